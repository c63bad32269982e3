#include <omp.h>
#include <sys/resource.h>

#include <cstdlib>
#include <thread>

#include "mmx/runtime.hpp"

namespace mmx {

// One policy for every kernel: OpenMP's thread count. The GEMM library (oneDNN, OpenMP runtime)
// reads the same setting, so there is no second pool to oversubscribe the cores.
void set_num_threads(int n) {
  if (n <= 0 && std::getenv("OMP_NUM_THREADS")) return;  // the environment already chose
  if (n <= 0) n = static_cast<int>(std::thread::hardware_concurrency());
  if (n <= 0) n = 1;
  omp_set_num_threads(n);
}

int num_threads() { return omp_get_max_threads(); }

double peak_rss_mb() {
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // Linux reports KiB
}

}  // namespace mmx
