// mmx: the command-line tool. Each subcommand lives in its own file and uses only the public API.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "mmx/error.hpp"
#include "mmx/hub_download.hpp"

namespace {

const mmx::cli::Subcommand kSubcommands[] = {
    {&mmx::cli::kEmbedCommand, mmx::cli::run_embed},
    {&mmx::cli::kTokenizeCommand, mmx::cli::run_tokenize},
    {&mmx::cli::kPreprocessCommand, mmx::cli::run_preprocess},
    {&mmx::cli::kClassifyCommand, mmx::cli::run_classify},
    {&mmx::cli::kSimilarityCommand, mmx::cli::run_similarity},
    {&mmx::cli::kLabCommand, mmx::cli::run_lab},
    {&mmx::cli::kGenerateCommand, mmx::cli::run_generate},
    {&mmx::cli::kDownloadCommand, mmx::cli::run_download},
    {&mmx::cli::kBenchCommand, mmx::cli::run_bench},
};

void print_main_help() {
  std::printf(
      "usage: mmx <command> [options]\n\n"
      "mmx runs Hugging Face multimodal models natively: the same checkpoints, the same numbers.\n\n"
      "commands:\n");
  for (const auto& s : kSubcommands) std::printf("  %-10s %s\n", s.command->name.c_str(), s.command->summary.c_str());
  std::printf(
      "\n`mmx <command> --help` explains each command. Exit codes: 0 ok, 1 runtime failure, 2 usage error.\n"
      "example:\n  mmx embed --model tests/data/models/bert-tiny --text \"Cat with paint\" --text \"rock statue\"\n");
}

}  // namespace

int main(int argc, char** argv) {
  mmx::enable_hub_downloads();  // --model takes Hub ids: what is not cached is downloaded once
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    print_main_help();
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "--version") {
    std::printf("mmx 0.1.0\n");
    return 0;
  }
  for (const auto& s : kSubcommands) {
    if (s.command->name != args[0]) continue;
    const std::vector<std::string> rest(args.begin() + 1, args.end());
    try {
      const mmx::cli::Args parsed = mmx::cli::parse_args(*s.command, rest);
      if (parsed.has("help")) {
        std::fputs(mmx::cli::help_text(*s.command).c_str(), stdout);
        return 0;
      }
      mmx::cli::apply_common_options(parsed);
      return s.run(parsed);
    } catch (const mmx::Error& e) {
      std::fprintf(stderr, "mmx %s: error: %s\n", s.command->name.c_str(), e.what());
      if (!e.hint().empty()) std::fprintf(stderr, "hint: %s\n", e.hint().c_str());
      if (e.kind() == mmx::ErrorKind::Usage) std::fprintf(stderr, "see: mmx %s --help\n", s.command->name.c_str());
      return static_cast<int>(e.kind());
    } catch (const std::bad_alloc&) {
      std::fprintf(stderr, "mmx %s: error: out of memory\n", s.command->name.c_str());
      return 1;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "mmx %s: error: %s\n", s.command->name.c_str(), e.what());
      return 1;
    }
  }
  std::fprintf(stderr, "mmx: error: unknown command '%s'\n", args[0].c_str());
  print_main_help();
  return 2;
}
