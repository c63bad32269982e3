// Process-wide settings (src/core/runtime.cpp): CPU threads and log verbosity, and what the process has used.
#pragma once

namespace mmx {

// Threads used by every CPU kernel (OpenMP and the GEMM library). n <= 0 means all cores.
constexpr int kMaxThreads = 1024;  // more than any CPU has; an OpenMP runtime crashes past what it can start
void set_num_threads(int n);
int num_threads();

// Messages go to stderr at this level and below (default Warn; MMX_LOG=debug|info|warn|error).
enum class LogLevel { Error = 0, Warn = 1, Info = 2, Debug = 3 };
void set_log_level(LogLevel level);
LogLevel log_level();

// The most resident memory this process has held so far (getrusage's ru_maxrss), in MiB.
double peak_rss_mb();

}  // namespace mmx
