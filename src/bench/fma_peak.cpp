// The machine's measured single-precision FMA peak: independent FMA chains on every thread, timed. What
// "% of peak" is read against, so it is this machine's ceiling (a nominal clock × width overstates or
// understates it: turbo, AVX-512 frequency licences, shared cores).
#include "bench/fma_peak.hpp"

#if defined(__GNUC__) && !defined(__clang__)  // GCC 12's AVX-512 headers (see gemm_lowp_avx512.cpp)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <map>
#include <mutex>

#include "backend/cpu/gemm_lowp.hpp"
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
// 24 independent vdpbf16ps (16 lanes × 2 multiply-adds) or vpdpbusd (16 × 4) chains.
__attribute__((target("avx512f,avx512bw,avx512bf16"))) float dpbf16_chains(int64_t iterations) {
  __m512 acc[24];
  for (int i = 0; i < 24; ++i) acc[i] = _mm512_set1_ps(0.001f * i);
  const __m512bh a = (__m512bh)_mm512_set1_epi32(0x3f803f80), b = (__m512bh)_mm512_set1_epi32(0x38003800);
  for (int64_t it = 0; it < iterations; ++it) {
#pragma GCC unroll 24
    for (int i = 0; i < 24; ++i) acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
  }
  float lanes[16], sum = 0;
  for (int i = 0; i < 24; ++i) {
    _mm512_storeu_ps(lanes, acc[i]);
    for (float l : lanes) sum += l;
  }
  return sum;
}
__attribute__((target("avx512f,avx512bw,avx512vnni"))) float dpbusd_chains(int64_t iterations) {
  __m512i acc[24];
  for (int i = 0; i < 24; ++i) acc[i] = _mm512_set1_epi32(i);
  const __m512i a = _mm512_set1_epi8(1), b = _mm512_set1_epi8(1);
  for (int64_t it = 0; it < iterations; ++it) {
#pragma GCC unroll 24
    for (int i = 0; i < 24; ++i) acc[i] = _mm512_dpbusd_epi32(acc[i], a, b);
  }
  int32_t lanes[16];
  float sum = 0;
  for (int i = 0; i < 24; ++i) {
    _mm512_storeu_si512(lanes, acc[i]);
    for (int32_t l : lanes) sum += float(l);
  }
  return sum;
}
__attribute__((target("avx2,avxvnni"))) float dpbusd_chains_ymm(int64_t iterations) {
  __m256i acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_epi32(i);
  const __m256i a = _mm256_set1_epi8(1), b = _mm256_set1_epi8(1);
  for (int64_t it = 0; it < iterations; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_dpbusd_avx_epi32(acc[i], a, b);
  }
  int32_t lanes[8];
  float sum = 0;
  for (int i = 0; i < 12; ++i) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(lanes), acc[i]);
    for (int32_t l : lanes) sum += float(l);
  }
  return sum;
}
// Four accumulator tiles, each updated from two resident A and B tiles: the tile unit's own rate.
template <bool Int8>
__attribute__((target("amx-tile,amx-bf16,amx-int8"))) float amx_chains(int64_t iterations) {
  cpu::amx_prepare();
  alignas(64) static const uint8_t ones[16 * 64] = {};  // the values do not change the rate
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  _tile_loadd(4, ones, 64);
  _tile_loadd(5, ones, 64);
  _tile_loadd(6, ones, 64);
  _tile_loadd(7, ones, 64);
  for (int64_t it = 0; it < iterations; ++it) {
    if constexpr (Int8) {
      _tile_dpbusd(0, 4, 6);
      _tile_dpbusd(1, 4, 7);
      _tile_dpbusd(2, 5, 6);
      _tile_dpbusd(3, 5, 7);
    } else {
      _tile_dpbf16ps(0, 4, 6);
      _tile_dpbf16ps(1, 4, 7);
      _tile_dpbf16ps(2, 5, 6);
      _tile_dpbf16ps(3, 5, 7);
    }
  }
  alignas(64) float out[16 * 16];
  _tile_stored(0, out, 64);
  return out[0];
}

// Runs `chains` on `threads` threads, best of five; `ops_per_iteration` per thread.
template <class F>
double best_rate(int threads, int64_t iterations, double ops_per_iteration, F chains) {
  double best = 0;
  for (int repeat = 0; repeat < 5; ++repeat) {
    const auto start = std::chrono::steady_clock::now();
    float sink = 0;
#pragma omp parallel num_threads(threads) reduction(+ : sink)
    sink += chains(iterations);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    volatile float keep = sink;
    (void)keep;
    best = std::max(best, ops_per_iteration * double(iterations) * threads / seconds / 1e9);
  }
  return best;
}

}  // namespace

double cpu_peak_gflops_for(DType compute, int threads, double at_least, std::string* unit) {
  const cpu::LowpKernel* k = compute == DType::BF16  ? cpu::lowp_kernel(cpu::LowpType::BF16)
                             : compute == DType::I8 ? cpu::lowp_kernel(cpu::LowpType::Int8)
                                                    : nullptr;
  if (!k) {
    if (unit) *unit = "fp32 FMA";
    return cpu_peak_gflops(threads, at_least);
  }
  static std::mutex mutex;
  static std::map<std::pair<std::string, int>, double> measured;
  std::lock_guard<std::mutex> lock(mutex);
  const std::string name = k->name;
  if (unit) *unit = name;
  double& peak = measured[{name, threads}];
  if (peak >= at_least && peak > 0) return peak;
  double now = 0;
  if (name == "amx-bf16") now = best_rate(threads, 1 << 16, 4.0 * 16 * 16 * 32 * 2, amx_chains<false>);
  else if (name == "amx-int8") now = best_rate(threads, 1 << 16, 4.0 * 16 * 16 * 64 * 2, amx_chains<true>);
  else if (name == "avx512-bf16") now = best_rate(threads, 1 << 20, 24.0 * 16 * 2 * 2, dpbf16_chains);
  else if (name == "avx512-vnni") now = best_rate(threads, 1 << 20, 24.0 * 16 * 4 * 2, dpbusd_chains);
  else if (name == "avx-vnni") now = best_rate(threads, 1 << 20, 12.0 * 8 * 4 * 2, dpbusd_chains_ymm);
  return peak = std::max({peak, now, at_least});
}

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
