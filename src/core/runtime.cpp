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
#include "core/thread_pool.hpp"
#include "mmx/runtime.hpp"

namespace mmx {

namespace {
std::mutex g_reason_mutex;
std::string g_reason = "the CPU budget (affinity and cgroup quota)";
void set_reason(std::string why) {
  std::lock_guard<std::mutex> lock(g_reason_mutex);
  g_reason = std::move(why);
}
}  // namespace

std::string threads_reason() {
  std::lock_guard<std::mutex> lock(g_reason_mutex);
  return g_reason;
}

namespace {
struct ThreadChoice {
  int threads;
  std::string why;
};

// --threads N (n > 0), else MMX_THREADS, else OMP_NUM_THREADS (as PyTorch users set it), else what the
// process may use: its affinity mask capped by its cgroup quota, not the host's cores.
ThreadChoice choose_threads(int n) {
  // Counts no machine has are refused before any work (OMP_NUM_THREADS too: oneDNN's OpenMP runtime reads
  // it itself, and crashes when it cannot start that many threads).
  if (n > kMaxThreads) usage_error("a thread count of ", n, ": at most ", kMaxThreads, " (this machine has ", std::thread::hardware_concurrency(), " cores)");
  long omp = 0;
  if (const char* env = std::getenv("OMP_NUM_THREADS"); env && *env) {
    omp = std::strtol(env, nullptr, 10);  // "8" or a nested list "8,2"
    if (omp > kMaxThreads) usage_error("OMP_NUM_THREADS=", env, ": at most ", kMaxThreads, " threads");
  }
  if (n > 0) return {n, "asked for"};
  if (const char* env = std::getenv("MMX_THREADS"); env && *env) {
    char* end = nullptr;
    const long v = std::strtol(env, &end, 10);
    if (*end != '\0' || v < 1 || v > kMaxThreads) usage_error("MMX_THREADS='", env, "': give a thread count from 1 to ", kMaxThreads);
    return {static_cast<int>(v), "MMX_THREADS"};
  }
  if (omp >= 1) return {static_cast<int>(omp), "OMP_NUM_THREADS"};
  const CpuBudget budget = cpu_budget();
  return {budget.threads, budget.why};
}
}  // namespace

int default_threads() { return choose_threads(0).threads; }

// One count for every kernel: the process's thread pool (core/thread_pool.hpp), and oneDNN's OpenMP team
// on the CPUs whose GEMM goes through it.
void set_num_threads(int n) {
  const ThreadChoice choice = choose_threads(n);
  set_pool_threads(choice.threads);
  omp_set_num_threads(choice.threads);
  set_reason(choice.why);
}

int num_threads() { return pool_threads(); }

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
