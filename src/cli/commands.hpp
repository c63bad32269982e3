// The subcommands of mmx, one file each (src/cli/cmd_*.cpp), as main.cpp dispatches them.
#pragma once
#include <string>
#include <vector>

#include "cli/args.hpp"
#include "cli/input.hpp"

namespace mmx::cli {

struct Subcommand {
  const Command* command;
  int (*run)(const Args& args);
};

extern const Command kEmbedCommand, kTokenizeCommand, kBenchCommand, kPreprocessCommand, kClassifyCommand,
    kSimilarityCommand, kLabCommand, kGenerateCommand, kDownloadCommand, kCompletionCommand, kManpageCommand,
    kServeCommand, kIndexCommand, kSearchCommand;
int run_completion(const Args& args);
int run_manpage(const Args& args);
int run_download(const Args& args);
int run_generate(const Args& args);
int run_similarity(const Args& args);
int run_lab(const Args& args);
int run_embed(const Args& args);
int run_preprocess(const Args& args);
int run_classify(const Args& args);
int run_tokenize(const Args& args);
int run_bench(const Args& args);
int run_serve(const Args& args);
int run_index(const Args& args);
int run_search(const Args& args);

// Every subcommand, in the order `mmx --help` lists them (main.cpp).
const std::vector<Subcommand>& subcommands();

}  // namespace mmx::cli
