// Whole-file reads, UTF-8 validation and atomic writes (temporary name in the same folder, then rename).
#pragma once
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace mmx {

std::string read_file(const std::string& path);  // fails with the path and errno text
bool file_exists(const std::string& path);
bool dir_exists(const std::string& path);
std::string join_path(const std::string& dir, const std::string& name);

// Byte offset of the first invalid UTF-8 sequence, or npos when `text` is valid.
size_t find_invalid_utf8(std::string_view text);

// Fails (usage error) when the folder that would hold `path` does not exist, so a command
// can refuse a bad output path before doing any work.
void check_output_path(const std::string& path);

// Calls write(tmp_path) and renames tmp_path to path; removes tmp_path on any failure.
void write_atomically(const std::string& path, const std::function<void(const std::string& tmp_path)>& write);
void write_file_atomically(const std::string& path, std::string_view bytes);

// Several outputs of one command, written together or not at all: each is written to a temporary name
// beside its target (temporary_for), and commit() renames them all into place; an object destroyed
// without commit (an error on the way) removes what was written.
class StagedOutputs {
 public:
  StagedOutputs() = default;
  StagedOutputs(const StagedOutputs&) = delete;
  StagedOutputs& operator=(const StagedOutputs&) = delete;
  ~StagedOutputs();
  // Where to write `path` for now: its folder, its name with ".tmp-<pid>" before the extension.
  std::string temporary_for(const std::string& path);
  void commit();

 private:
  std::vector<std::pair<std::string, std::string>> staged_;  // (temporary, target)
  bool committed_ = false;
};

}  // namespace mmx
