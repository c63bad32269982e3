// The AVX-512 GEMM micro-kernel: a tile of up to 14 rows × 32 columns held in 28 zmm accumulators,
// fed per k by two 16-float loads of the packed weight panel and one broadcast per row of the packed
// activations (2 loads + 14 broadcasts per 28 FMAs: the FMA units, not the loads, set the pace).
#include <immintrin.h>

#include <array>
#include <cstdint>
#include <utility>

#include "backend/cpu/gemm_packed.hpp"

namespace mmx::cpu {

namespace {

// Weight panels come from DRAM when M is small: fetch 32 k-steps (4 KB) ahead, both lines of each step
// (measured: 16 steps ahead or none cost ~10 %, 128 steps ahead ~15 %).
constexpr int kPrefetchFloats = 1024;

template <int R>
__attribute__((target("avx512f,fma"))) void tile_avx512(int /*rows = R*/, int64_t kc, const float* ap, const float* bp, float* c,
                                                          int64_t ldc, int ncols, bool accumulate) {
  __m512 lo[R], hi[R];
#pragma GCC unroll 14
  for (int r = 0; r < R; ++r) {
    lo[r] = hi[r] = _mm512_setzero_ps();
    // The C tile is read (or written) at the end: fetch its lines while the FMAs run.
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc + 16), _MM_HINT_T0);
  }
#pragma GCC unroll 4
  for (int64_t p = 0; p < kc; ++p) {
    const __m512 b0 = _mm512_loadu_ps(bp), b1 = _mm512_loadu_ps(bp + 16);
    _mm_prefetch(reinterpret_cast<const char*>(bp + kPrefetchFloats), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(bp + kPrefetchFloats + 16), _MM_HINT_T0);
#pragma GCC unroll 14
    for (int r = 0; r < R; ++r) {
      const __m512 a = _mm512_set1_ps(ap[r]);
      lo[r] = _mm512_fmadd_ps(a, b0, lo[r]);
      hi[r] = _mm512_fmadd_ps(a, b1, hi[r]);
    }
    ap += R;
    bp += 32;
  }
  const __mmask16 m0 = ncols >= 16 ? __mmask16(0xffff) : __mmask16((1u << ncols) - 1);
  const __mmask16 m1 = ncols >= 32 ? __mmask16(0xffff) : ncols <= 16 ? __mmask16(0) : __mmask16((1u << (ncols - 16)) - 1);
#pragma GCC unroll 14
  for (int r = 0; r < R; ++r) {
    float* row = c + r * ldc;
    if (accumulate) {
      lo[r] = _mm512_add_ps(lo[r], _mm512_maskz_loadu_ps(m0, row));
      hi[r] = _mm512_add_ps(hi[r], _mm512_maskz_loadu_ps(m1, row + 16));
    }
    _mm512_mask_storeu_ps(row, m0, lo[r]);
    _mm512_mask_storeu_ps(row + 16, m1, hi[r]);
  }
}

// One instantiation per tile height, so every accumulator lives in a register.
template <size_t... H>
constexpr std::array<GemmTileFn, sizeof...(H)> tiles_by_height(std::index_sequence<H...>) {
  return {&tile_avx512<int(H) + 1>...};
}
constexpr auto kTiles = tiles_by_height(std::make_index_sequence<14>());

}  // namespace

void gemm_tile_avx512(int rows, int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc, int ncols,
                      bool accumulate) {
  if (rows >= 1 && rows <= 14) kTiles[rows - 1](rows, kc, ap, bp, c, ldc, ncols, accumulate);
}

}  // namespace mmx::cpu
