// The CPU's measured FMA peak (fma_peak.cpp): the ceiling benchmarks rate GFLOP/s against.
#pragma once
#include <string>

#include "mmx/tensor.hpp"

namespace mmx {

// GFLOP/s of independent FMA chains on `threads` threads, `width` 512 (AVX-512) or 256 (AVX2 + FMA).
double measure_fma_peak_gflops(int threads, int width);
// The peak of the vectors this process's GEMM uses, measured once per thread count, and again when a
// workload ran faster than it (`at_least`): the first measurement was then disturbed, as nothing outruns
// the FMA units. MMX_PEAK_GFLOPS (GFLOP/s for all cores) overrides it.
double cpu_peak_gflops(int threads, double at_least = 0);

// The same for the unit the low-precision GEMM runs on at `compute` (BF16: AMX-BF16 tiles or vdpbf16ps
// chains; I8: AMX-INT8 tiles, vpdpbusd on zmm or ymm): independent accumulators, 2 operations per
// multiply-add (GOP/s for int8). F32, or no unit: cpu_peak_gflops. `unit` receives the unit's name.
double cpu_peak_gflops_for(DType compute, int threads, double at_least, std::string* unit = nullptr);

}  // namespace mmx
