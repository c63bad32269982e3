// Process-wide settings: CPU threads, log verbosity (MMX_LOG), and the process's peak memory.
#include <omp.h>
#include <sys/resource.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>

#include "core/cpu_budget.hpp"
#include "core/log.hpp"
#include "mmx/runtime.hpp"

namespace mmx {

namespace {
std::mutex g_reason_mutex;
std::string g_reason = "the OpenMP runtime's default";
void set_reason(std::string why) {
  std::lock_guard<std::mutex> lock(g_reason_mutex);
  g_reason = std::move(why);
}
}  // namespace

std::string threads_reason() {
  std::lock_guard<std::mutex> lock(g_reason_mutex);
  return g_reason;
}

// One policy for every kernel: OpenMP's thread count. The GEMM library (oneDNN, OpenMP runtime)
// reads the same setting, so there is no second pool to oversubscribe the cores.
void set_num_threads(int n) {
  // The OpenMP runtime starts every thread it is told to at the first parallel region, and crashes when
  // it cannot: refuse counts no machine has, before any work (OMP_NUM_THREADS too, which it reads itself).
  if (n > kMaxThreads) usage_error("a thread count of ", n, ": at most ", kMaxThreads, " (this machine has ", std::thread::hardware_concurrency(), " cores)");
  if (const char* env = std::getenv("OMP_NUM_THREADS")) {
    const long first = std::strtol(env, nullptr, 10);  // "8" or a nested list "8,2"
    if (first > kMaxThreads) usage_error("OMP_NUM_THREADS=", env, ": at most ", kMaxThreads, " threads");
  }
  std::string why = "asked for";
  if (n <= 0) {
    if (const char* env = std::getenv("MMX_THREADS"); env && *env) {
      char* end = nullptr;
      const long v = std::strtol(env, &end, 10);
      if (*end != '\0' || v < 1 || v > kMaxThreads) usage_error("MMX_THREADS='", env, "': give a thread count from 1 to ", kMaxThreads);
      n = static_cast<int>(v);
      why = "MMX_THREADS";
    } else if (std::getenv("OMP_NUM_THREADS")) {  // the environment already chose, for the OpenMP runtime itself
      set_reason("OMP_NUM_THREADS");
      return;
    } else {
      const CpuBudget budget = cpu_budget();  // what the process may use, not the host's cores
      n = budget.threads;
      why = budget.why;
    }
  }
  omp_set_num_threads(n);
  set_reason(why);
}

int num_threads() { return omp_get_max_threads(); }

double peak_rss_mb() {
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // Linux reports KiB
}

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
