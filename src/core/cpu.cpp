#include "core/cpu.hpp"

#include <cpuid.h>

#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>

namespace mmx {

namespace {
uint64_t xgetbv0() {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (uint64_t(edx) << 32) | eax;
}

// Linux hands out the AMX tile state (8 KB per thread) only to processes that ask for it.
bool request_tile_state() {
#if defined(__linux__) && defined(SYS_arch_prctl)
  constexpr long kArchReqXcompPerm = 0x1023, kXfeatureTileData = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureTileData) == 0;
#else
  return false;
#endif
}

CpuFeatures detect() {
  CpuFeatures f;
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = c & (1u << 27);
  const uint64_t xcr0 = osxsave ? xgetbv0() : 0;
  const bool ymm = (xcr0 & 0x6) == 0x6, zmm = (xcr0 & 0xe6) == 0xe6;  // SSE+AVX state; + opmask and ZMM
  f.avx = ymm && (c & (1u << 28));
  f.fma = f.avx && (c & (1u << 12));
  f.f16c = f.avx && (c & (1u << 29));
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
    f.avx2 = f.avx && (b & (1u << 5));
    f.avx512f = zmm && (b & (1u << 16));
    f.avx512bw = f.avx512f && (b & (1u << 30)) && (b & (1u << 31));  // BW and VL
    f.avx512_vnni = f.avx512bw && (c & (1u << 11));
    // AMX: the tile state must be enabled in XCR0 (bits 17, 18) and granted to this process by Linux.
    const bool amx_os = (d & (1u << 24)) && (xcr0 & (3ull << 17)) == (3ull << 17) && request_tile_state();
    f.amx_bf16 = amx_os && (d & (1u << 22));
    f.amx_int8 = amx_os && (d & (1u << 25));
    unsigned a1, b1, c1, d1;
    if (__get_cpuid_count(7, 1, &a1, &b1, &c1, &d1)) {
      f.avx_vnni = f.avx2 && (a1 & (1u << 4));
      f.avx512_bf16 = f.avx512bw && (a1 & (1u << 5));
    }
  }
  return f;
}
}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

}  // namespace mmx
