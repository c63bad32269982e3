#include "core/log.hpp"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace mmx {

static LogLevel initial_level() {
  const char* env = std::getenv("MMX_LOG");
  if (!env) return LogLevel::Warn;
  if (!std::strcmp(env, "debug")) return LogLevel::Debug;
  if (!std::strcmp(env, "info")) return LogLevel::Info;
  if (!std::strcmp(env, "error")) return LogLevel::Error;
  return LogLevel::Warn;
}

static std::atomic<LogLevel> g_level{initial_level()};

void set_log_level(LogLevel level) { g_level = level; }
LogLevel log_level() { return g_level; }

void log_line(LogLevel level, const std::string& message) {
  static const char* names[] = {"error", "warning", "info", "debug"};
  std::fprintf(stderr, "mmx: %s: %s\n", names[static_cast<int>(level)], message.c_str());
}

}  // namespace mmx
