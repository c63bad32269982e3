// What the CPU and the OS support, read once from CPUID (and XGETBV for the OS-saved register state),
// so that vector kernels are chosen at run time and a portable build still uses them.
#pragma once

namespace mmx {

struct CpuFeatures {
  bool avx = false, avx2 = false, fma = false, f16c = false, avx512f = false;
  // The low-precision dot products: AVX512_BF16 (vdpbf16ps), AVX512_VNNI / AVX-VNNI (vpdpbusd on zmm / ymm),
  // AVX512BW + VL (the byte and word stores the conversions use), and AMX tiles (BF16, INT8). AMX also needs the
  // kernel's permission for the tile state (arch_prctl ARCH_REQ_XCOMP_PERM), asked for once, here.
  bool avx512bw = false, avx512_bf16 = false, avx512_vnni = false, avx_vnni = false, amx_bf16 = false,
       amx_int8 = false;
};
const CpuFeatures& cpu_features();

}  // namespace mmx
