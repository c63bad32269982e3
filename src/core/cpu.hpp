// What the CPU and the OS support, read once from CPUID (and XGETBV for the OS-saved register state),
// so that vector kernels are chosen at run time and a portable build still uses them.
#pragma once

namespace mmx {

struct CpuFeatures {
  bool avx = false, avx2 = false, fma = false, f16c = false, avx512f = false;
};
const CpuFeatures& cpu_features();

}  // namespace mmx
