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

}  // namespace mmx
