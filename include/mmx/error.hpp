// Errors carry their context up the stack as exceptions of one type; library code never exits.
// The CLI maps the kind to the exit code: usage → 2, everything else → 1.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace mmx {

enum class ErrorKind { Runtime = 1, Usage = 2 };

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message, std::string hint = "")
      : std::runtime_error(message), kind_(kind), hint_(std::move(hint)) {}
  ErrorKind kind() const { return kind_; }
  const std::string& hint() const { return hint_; }

 private:
  ErrorKind kind_;
  std::string hint_;
};

// Concatenates anything streamable: str("tensor '", name, "': shape ", n).
template <class... Args>
std::string str(const Args&... args) {
  std::ostringstream out;
  (out << ... << args);
  return out.str();
}

template <class... Args>
[[noreturn]] void fail(const Args&... args) {
  throw Error(ErrorKind::Runtime, str(args...));
}

template <class... Args>
[[noreturn]] void usage_error(const Args&... args) {
  throw Error(ErrorKind::Usage, str(args...));
}

// Re-throws with a prefix naming the outer context ("config.json: ...").
[[noreturn]] void rethrow_with_context(const Error& e, const std::string& context);

}  // namespace mmx
