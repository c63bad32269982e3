#pragma once
#include <string>
#include <vector>

#include "cli/args.hpp"

namespace mmx::cli {

struct Subcommand {
  const Command* command;
  int (*run)(const Args& args);
};

extern const Command kEmbedCommand, kTokenizeCommand, kBenchCommand;
int run_embed(const Args& args);
int run_tokenize(const Args& args);
int run_bench(const Args& args);

// Texts from --text (in order) then --texts-file lines; an empty result is a usage error.
std::vector<std::string> collect_texts(const Args& args);

}  // namespace mmx::cli
