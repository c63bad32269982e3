// mmx: the command-line tool. Each subcommand lives in its own file and uses only the public API.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "core/cpu_budget.hpp"
#include "cli/build_info.hpp"
#include "mmx/device.hpp"
#include "mmx/runtime.hpp"
#include "mmx/error.hpp"
#include "mmx/hub_download.hpp"

namespace {

const std::vector<mmx::cli::Subcommand> kSubcommands = {
    {&mmx::cli::kEmbedCommand, mmx::cli::run_embed},
    {&mmx::cli::kTokenizeCommand, mmx::cli::run_tokenize},
    {&mmx::cli::kPreprocessCommand, mmx::cli::run_preprocess},
    {&mmx::cli::kClassifyCommand, mmx::cli::run_classify},
    {&mmx::cli::kSimilarityCommand, mmx::cli::run_similarity},
    {&mmx::cli::kLabCommand, mmx::cli::run_lab},
    {&mmx::cli::kGenerateCommand, mmx::cli::run_generate},
    {&mmx::cli::kIndexCommand, mmx::cli::run_index},
    {&mmx::cli::kSearchCommand, mmx::cli::run_search},
    {&mmx::cli::kServeCommand, mmx::cli::run_serve},
    {&mmx::cli::kDownloadCommand, mmx::cli::run_download},
    {&mmx::cli::kBenchCommand, mmx::cli::run_bench},
    {&mmx::cli::kCompletionCommand, mmx::cli::run_completion},
    {&mmx::cli::kManpageCommand, mmx::cli::run_manpage},
};

void print_main_help(std::FILE* out) {
  std::fprintf(out,
               "usage: mmx <command> [options]\n\n"
               "mmx runs Hugging Face multimodal models natively: the same checkpoints, the same numbers.\n\n"
               "commands:\n");
  for (const auto& s : kSubcommands) {
    const std::string& summary = s.command->summary;
    std::fprintf(out, "  %-10s %s\n", s.command->name.c_str(), summary.substr(0, summary.find('\n')).c_str());
  }
  std::fprintf(out,
               "\n`mmx <command> --help` explains each command; `mmx --version` says what this build has.\n"
               "A model is a folder written by save_pretrained or a Hub id (org/name), read from the Hugging Face\n"
               "cache and downloaded into it once. Exit codes: 0 ok, 2 what was typed is wrong,\n"
               "1 what a file or the network held is wrong (each message names the flag or the file).\n"
               "example:\n  mmx embed --model tests/data/models/bert-tiny --text \"Cat with paint\" --text \"rock statue\"\n");
}

// The build and what it can run here, without loading any backend module.
void print_version() {
  std::printf("mmx %s (commit %s, %s build, %s)\n", mmx::cli::kVersion, mmx::cli::kCommit, mmx::cli::kBuildType,
              mmx::cli::kCompiler);
  std::printf("cpu: %s\n", mmx::device_description(mmx::Device::cpu()).c_str());
  mmx::set_num_threads(0);  // the default a command would take here, and why
  std::printf("threads: %d by default (%s; --threads or MMX_THREADS sets it)\n", mmx::num_threads(),
              mmx::threads_reason().c_str());
  for (const auto& kind : mmx::device_kinds())
    if (kind != "cpu") std::printf("%s: %s\n", kind.c_str(), mmx::device_kind_status(kind).c_str());
}

const mmx::cli::Subcommand* find_command(const std::string& name) {
  for (const auto& s : kSubcommands)
    if (s.command->name == name) return &s;
  return nullptr;
}

std::vector<std::string> command_names() {
  std::vector<std::string> names;
  for (const auto& s : kSubcommands) names.push_back(s.command->name);
  return names;
}

}  // namespace

const std::vector<mmx::cli::Subcommand>& mmx::cli::subcommands() { return kSubcommands; }

int main(int argc, char** argv) {
  mmx::enable_hub_downloads();  // --model takes Hub ids: what is not cached is downloaded once
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) {  // a usage error: the help goes where errors go
    print_main_help(stderr);
    return 2;
  }
  if (args[0] == "--help" || args[0] == "-h" || (args[0] == "help" && args.size() == 1)) {
    print_main_help(stdout);
    return 0;
  }
  if (args[0] == "help" && find_command(args[1])) {  // mmx help embed
    std::fputs(mmx::cli::help_text(*find_command(args[1])->command).c_str(), stdout);
    return 0;
  }
  if (args[0] == "--version" || args[0] == "-V" || args[0] == "version") {
    print_version();
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
  const std::string guess = mmx::cli::closest(args[0] == "help" ? args[1] : args[0], command_names());
  std::fprintf(stderr, "mmx: error: unknown command '%s'%s\n", (args[0] == "help" ? args[1] : args[0]).c_str(),
               guess.empty() ? "" : ("; did you mean '" + guess + "'?").c_str());
  std::fprintf(stderr, "see: mmx --help\n");
  return 2;
}
