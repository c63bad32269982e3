// The machine's measured single-precision FMA peak: independent FMA chains on every thread, timed. What
// "% of peak" is read against, so it is this machine's ceiling (a nominal clock × width overstates or
// understates it: turbo, AVX-512 frequency licences, shared cores).
#include "bench/fma_peak.hpp"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <map>
#include <mutex>

#include "backend/cpu/gemm_packed.hpp"
#include "core/cpu.hpp"
#include "mmx/runtime.hpp"

namespace mmx {
namespace {

// 24 (AVX-512) or 12 (AVX2) independent FMA chains: enough to cover the FMA units' latency × throughput.
__attribute__((target("avx512f,fma"))) float fma_chains_avx512(int64_t iterations) {
  __m512 acc[24];
  for (int i = 0; i < 24; ++i) acc[i] = _mm512_set1_ps(0.001f * i);
  const __m512 a = _mm512_set1_ps(0.9999f), b = _mm512_set1_ps(1e-4f);
  for (int64_t it = 0; it < iterations; ++it) {
#pragma GCC unroll 24
    for (int i = 0; i < 24; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  }
  float lanes[16], sum = 0;  // (not _mm512_reduce_add_ps: GCC 12's header warns inside it)
  for (int i = 0; i < 24; ++i) {
    _mm512_storeu_ps(lanes, acc[i]);
    for (float l : lanes) sum += l;
  }
  return sum;
}
__attribute__((target("avx2,fma"))) float fma_chains_avx2(int64_t iterations) {
  __m256 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(0.001f * i);
  const __m256 a = _mm256_set1_ps(0.9999f), b = _mm256_set1_ps(1e-4f);
  for (int64_t it = 0; it < iterations; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  }
  float lanes[8], sum = 0;
  for (int i = 0; i < 12; ++i) {
    _mm256_storeu_ps(lanes, acc[i]);
    for (float l : lanes) sum += l;
  }
  return sum;
}
}  // namespace

double measure_fma_peak_gflops(int threads, int width) {
  constexpr int64_t kIterations = 1 << 20;  // ~10 ms per thread at 2.5 GHz
  const int chains = width == 512 ? 24 : 12, lanes = width == 512 ? 16 : 8;
  double best = 0;
  for (int repeat = 0; repeat < 5; ++repeat) {  // the best of five: a busy moment only lowers one
    const auto start = std::chrono::steady_clock::now();
    float sink = 0;
#pragma omp parallel num_threads(threads) reduction(+ : sink)
    sink += width == 512 ? fma_chains_avx512(kIterations) : fma_chains_avx2(kIterations);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    volatile float keep = sink;  // the chains' result is used
    (void)keep;
    best = std::max(best, 2.0 * double(kIterations) * threads * chains * lanes / seconds / 1e9);
  }
  return best;
}

double cpu_peak_gflops(int threads, double at_least) {
  if (const char* env = std::getenv("MMX_PEAK_GFLOPS")) return std::atof(env) * threads / std::max(1, num_threads());
  static std::mutex mutex;
  static std::map<int, double> measured;  // by thread count, once per process
  std::lock_guard<std::mutex> lock(mutex);
  auto it = measured.find(threads);
  if (it != measured.end() && it->second >= at_least) return it->second;
  // The widest vectors the GEMM runs on here (MMX_GEMM can narrow it); scalar FMA-less CPUs: 2 FLOP/cycle-ish.
  const cpu::GemmKernel* k = cpu::gemm_kernel();
  const CpuFeatures& f = cpu_features();
  const int width = k ? (std::string(k->name) == "avx512" ? 512 : 256) : f.avx512f ? 512 : f.avx2 && f.fma ? 256 : 0;
  double peak = width ? measure_fma_peak_gflops(threads, width) : 0;
  if (peak <= 0) peak = 1;  // no FMA unit to measure: report GFLOP/s, the fraction means little
  if (it != measured.end()) peak = std::max(peak, it->second);  // measured again: the better of the two
  // Another process took the cores while the chains ran (a parallel test run, a busy machine): try again,
  // and never report a peak below a rate this process has reached, which is itself a lower bound of it.
  for (int retry = 0; width && retry < 2 && peak < at_least; ++retry) peak = std::max(peak, measure_fma_peak_gflops(threads, width));
  peak = std::max(peak, at_least);
  return measured[threads] = peak;
}

}  // namespace mmx
