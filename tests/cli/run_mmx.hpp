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

// Whether this build runs under AddressSanitizer, whose shadow memory reserves terabytes of address space
// (an address-space cap would stop it before main).
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAddressSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kAddressSanitizer = true;
#else
constexpr bool kAddressSanitizer = false;
#endif
#else
constexpr bool kAddressSanitizer = false;
#endif

// `address_space_mib` > 0 runs the command under that address-space cap (ulimit -v): what it asks for
// beyond it fails at once instead of being swapped in (not under ASan: see above).
inline Result run(const std::vector<std::string>& args, int64_t address_space_mib = 0) {
  test::TempDir dir;
  std::string cmd = address_space_mib > 0 && !kAddressSanitizer
                        ? "ulimit -v " + std::to_string(address_space_mib * 1024) + " && exec " + quote(MMX_BINARY)
                        : quote(MMX_BINARY);
  for (const auto& a : args) cmd += " " + quote(a);
  cmd += " >" + dir.file("out") + " 2>" + dir.file("err");
  const int status = std::system(cmd.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, read_file(dir.file("out")), read_file(dir.file("err"))};
}

}  // namespace mmx::test
