// Runs the mmx binary with arguments (no shell parsing of them) and captures exit code, stdout, stderr.
#pragma once
#include <sys/wait.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "mmx/files.hpp"
#include "test_util.hpp"

namespace mmx::test {

struct Result {
  int code;
  std::string out, err;
};

inline std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

inline Result run(const std::vector<std::string>& args) {
  test::TempDir dir;
  std::string cmd = quote(MMX_BINARY);
  for (const auto& a : args) cmd += " " + quote(a);
  cmd += " >" + dir.file("out") + " 2>" + dir.file("err");
  const int status = std::system(cmd.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, read_file(dir.file("out")), read_file(dir.file("err"))};
}

}  // namespace mmx::test
