// Logging to stderr; stdout stays reserved for a command's results.
#pragma once
#include "mmx/error.hpp"
#include "mmx/runtime.hpp"

namespace mmx {

void log_line(LogLevel level, const std::string& message);

template <class... Args> void log_warn(const Args&... args) {
  if (log_level() >= LogLevel::Warn) log_line(LogLevel::Warn, str(args...));
}
template <class... Args> void log_info(const Args&... args) {
  if (log_level() >= LogLevel::Info) log_line(LogLevel::Info, str(args...));
}
template <class... Args> void log_debug(const Args&... args) {
  if (log_level() >= LogLevel::Debug) log_line(LogLevel::Debug, str(args...));
}

}  // namespace mmx
