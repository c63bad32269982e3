// The README's shell blocks run as written, so none can rot. Each block runs in order in one sandbox
// that looks like the repository's root (its entries linked in, build/release/mmx the binary under
// test) with a cache of its own and the network off (HF_HUB_OFFLINE=1). A comment line before a block
// says otherwise:
//   <!-- test: hub -->           the block reaches the Hub: here a stand-in on 127.0.0.1 that serves the
//                                test models under the real models' names (HF_ENDPOINT)
//   <!-- test: prints -->        the ```text block after it is what the block prints on stdout
//   <!-- test: ci -->            the test command itself: .ci/run must run it verbatim (it is this run)
//   <!-- test: skip (reason) --> not run here, for the reason given (installs packages, needs a GPU, 7 GB)
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <gtest/gtest.h>

#include "cli/run_mmx.hpp"
#include "mmx/files.hpp"
#include "test_util.hpp"
#include "unit/hub_server.hpp"

namespace fs = std::filesystem;
using namespace mmx;

namespace {

struct Block {
  int line = 0;          // where its fence opens in README.md
  std::string marker;    // "", "hub", "prints", "ci" or "skip"
  std::string code;      // the shell text
  std::string expected;  // with "prints": the text block that follows
};

std::vector<Block> readme_blocks(const std::string& readme) {
  std::vector<Block> blocks;
  std::istringstream in(readme);
  std::string line, marker;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.rfind("<!-- test: ", 0) == 0) {
      marker = line.substr(11, line.find_first_of(" -", 11) - 11);
      continue;
    }
    if (line.rfind("```", 0) != 0) {
      if (!line.empty()) marker.clear();  // a marker belongs to the block right below it
      continue;
    }
    const std::string language = line.substr(3);
    Block block{number, marker, "", ""};
    marker.clear();
    std::string body;
    while (std::getline(in, line) && line.rfind("```", 0) != 0) {
      ++number;
      body += line + "\n";
    }
    ++number;
    if (language == "sh") {
      block.code = body;
      blocks.push_back(block);
    } else if (language == "text" && !blocks.empty() && blocks.back().marker == "prints" && blocks.back().expected.empty()) {
      blocks.back().expected = body;
    }
  }
  return blocks;
}

// Real model names → the test models that stand in for them on the stand-in Hub.
test::HubServer::Repo repo_of(const std::string& folder) {
  test::HubServer::Repo repo;
  repo.commit = "0123456789abcdef0123456789abcdef01234567";
  for (const auto& entry : fs::directory_iterator(test::data("models/" + folder)))
    if (entry.is_regular_file()) repo.files[entry.path().filename().string()] = read_file(entry.path().string());
  return repo;
}

}  // namespace

TEST(Readme, EveryShellBlockRunsAsWritten) {
  const fs::path source = MMX_SOURCE_DIR;
  const std::string readme = read_file((source / "README.md").string());
  const std::vector<Block> blocks = readme_blocks(readme);
  ASSERT_GE(blocks.size(), 8u) << "the README's shell blocks were not found";

  test::TempDir sandbox;
  for (const auto& entry : fs::directory_iterator(source)) {
    const std::string name = entry.path().filename().string();
    if (name != "build" && name != ".git") fs::create_symlink(entry.path(), sandbox.path / name);
  }
  fs::create_directories(sandbox.path / "build/release");
  fs::create_symlink(MMX_BINARY, sandbox.path / "build/release/mmx");
  fs::create_directories(sandbox.path / "home");

  test::HubServer hub;
  hub.add("bert-base-uncased", repo_of("bert-tiny"));
  hub.add("google/vit-base-patch16-224", repo_of("vit-tiny"));
  hub.add("openai/clip-vit-base-patch32", repo_of("clip-tiny"));
  test::EnvVar home("HOME", sandbox.file("home")), hf_home("HF_HOME", sandbox.file("home/hf")),
      cache("HF_HUB_CACHE", std::nullopt), token("HF_TOKEN", std::nullopt), log("MMX_LOG", std::nullopt);

  int ran = 0, hub_blocks = 0, checked_outputs = 0, ci_blocks = 0;
  for (const Block& block : blocks) {
    SCOPED_TRACE("README.md:" + std::to_string(block.line) + "\n" + block.code);
    if (block.marker == "skip") continue;
    if (block.marker == "ci") {  // the command that runs this test: .ci/run must hold it, line for line
      const std::string ci = read_file((source / ".ci/run").string());
      std::istringstream lines(block.code);
      for (std::string line; std::getline(lines, line);)
        EXPECT_NE(ci.find("\n" + line + "\n"), std::string::npos) << ".ci/run does not run: " << line;
      ++ci_blocks;
      continue;
    }
    const bool online = block.marker == "hub";
    test::EnvVar offline("HF_HUB_OFFLINE", online ? std::nullopt : std::optional<std::string>("1")),
        endpoint("HF_ENDPOINT", online ? std::optional<std::string>(hub.endpoint()) : std::nullopt);
    write_file_atomically(sandbox.file("block.sh"), block.code);
    const std::string command = "cd " + test::quote(sandbox.path.string()) +
                                " && timeout 600 bash -eo pipefail block.sh >block.out 2>block.err";
    const int status = std::system(command.c_str());
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << read_file(sandbox.file("block.err"));
    if (block.marker == "prints") {
      EXPECT_FALSE(block.expected.empty()) << "a block marked 'prints' needs a ```text block after it";
      EXPECT_EQ(read_file(sandbox.file("block.out")), block.expected);
      ++checked_outputs;
    }
    ++ran;
    hub_blocks += online;
  }
  EXPECT_GE(ran, 8);
  EXPECT_GE(hub_blocks, 1) << "the set-up's lab on the real models runs against the stand-in Hub";
  EXPECT_GE(checked_outputs, 1);
  EXPECT_EQ(ci_blocks, 1);
  EXPECT_GT(hub.requests(), 0);
}

// The documents' command lines that cannot run here (a GPU, 7 GB) still name only commands and options
// that exist: every `mmx CMD ... --option` in a shell block of README.md and docs/*.md is checked
// against `mmx CMD --help`.
TEST(Readme, DocumentedCommandLinesNameRealOptions) {
  const fs::path source = MMX_SOURCE_DIR;
  std::vector<fs::path> documents = {source / "README.md"};
  for (const auto& entry : fs::directory_iterator(source / "docs"))
    if (entry.path().extension() == ".md") documents.push_back(entry.path());
  std::map<std::string, std::string> help;  // command → its --help
  int checked = 0;
  for (const fs::path& document : documents) {
    std::istringstream in(read_file(document.string()));
    bool in_shell = false;
    std::string command_line;
    for (std::string line; std::getline(in, line);) {
      const size_t indent = line.find_first_not_of(' ');
      const std::string trimmed = indent == std::string::npos ? "" : line.substr(indent);
      if (trimmed.rfind("```", 0) == 0) {
        in_shell = !in_shell && trimmed == "```sh";
        continue;
      }
      if (!in_shell) continue;
      command_line += trimmed;
      if (!command_line.empty() && command_line.back() == '\\') {  // continued on the next line
        command_line.pop_back();
        continue;
      }
      std::string text = command_line.substr(0, command_line.find('#'));  // no comments
      command_line.clear();
      for (size_t at = text.find("mmx "); at != std::string::npos; at = text.find("mmx ", at + 4)) {
        if (at > 0 && text[at - 1] != '/' && text[at - 1] != ' ' && text[at - 1] != '(') continue;
        std::istringstream words(text.substr(at + 4));
        std::string command;
        words >> command;
        if (command.empty() || command[0] == '-') continue;
        if (!help.count(command)) {
          const test::Result r = test::run({command, "--help"});
          ASSERT_EQ(r.code, 0) << document << ": no command 'mmx " << command << "'\n" << text;
          help[command] = r.out;
        }
        for (std::string word; words >> word && word != "|" && word != "&&" && word != ">";)
          if (word.rfind("--", 0) == 0 && word.size() > 2) {
            const std::string option = word.substr(0, word.find('='));
            EXPECT_NE(help[command].find("  " + option + " "), std::string::npos)
                << document.filename() << ": mmx " << command << " has no " << option << "\n" << text;
            ++checked;
          }
      }
    }
  }
  EXPECT_GE(checked, 40);
}

// The README's licence is the one in LICENSE (Apache-2.0, as the Hugging Face libraries whose files mmx reads).
TEST(Readme, TheLicenceIsThereAndTheReadmeNamesIt) {
  const fs::path source = MMX_SOURCE_DIR;
  const std::string license = read_file((source / "LICENSE").string());
  EXPECT_NE(license.find("Apache License"), std::string::npos);
  EXPECT_NE(license.find("Version 2.0, January 2004"), std::string::npos);
  EXPECT_NE(read_file((source / "README.md").string()).find("Apache-2.0 ([LICENSE](LICENSE))"), std::string::npos);
}
