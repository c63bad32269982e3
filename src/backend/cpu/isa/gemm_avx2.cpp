// The AVX2 + FMA GEMM micro-kernel: a tile of up to 6 rows × 16 columns in 12 ymm accumulators
// (2 panel loads + 6 broadcasts per 12 FMAs), for CPUs without AVX-512 (AMD Zen 1–3, older Intel).
#include <immintrin.h>

#include <array>
#include <cstdint>
#include <utility>

#include "backend/cpu/gemm_packed.hpp"

namespace mmx::cpu {

namespace {

__attribute__((target("avx2"))) inline __m256i column_mask(int ncols) {
  const __m256i index = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(ncols), index);
}

template <int R>
__attribute__((target("avx2,fma"))) void tile_avx2(int /*rows = R*/, int64_t kc, const float* ap, const float* bp, float* c,
                                                     int64_t ldc, int ncols, bool accumulate) {
  __m256 lo[R], hi[R];
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r) {
    lo[r] = hi[r] = _mm256_setzero_ps();
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc), _MM_HINT_T0);  // read or written at the end
  }
  for (int64_t p = 0; p < kc; ++p) {
    const __m256 b0 = _mm256_loadu_ps(bp), b1 = _mm256_loadu_ps(bp + 8);
    _mm_prefetch(reinterpret_cast<const char*>(bp + 512), _MM_HINT_T0);  // 32 k-steps ahead
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
      const __m256 a = _mm256_broadcast_ss(ap + r);
      lo[r] = _mm256_fmadd_ps(a, b0, lo[r]);
      hi[r] = _mm256_fmadd_ps(a, b1, hi[r]);
    }
    ap += R;
    bp += 16;
  }
  if (ncols == 16) {
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
      float* row = c + r * ldc;
      if (accumulate) {
        lo[r] = _mm256_add_ps(lo[r], _mm256_loadu_ps(row));
        hi[r] = _mm256_add_ps(hi[r], _mm256_loadu_ps(row + 8));
      }
      _mm256_storeu_ps(row, lo[r]);
      _mm256_storeu_ps(row + 8, hi[r]);
    }
    return;
  }
  const __m256i m0 = column_mask(ncols), m1 = column_mask(ncols - 8);
#pragma GCC unroll 6  // fully unrolled, or the accumulators would live on the stack
  for (int r = 0; r < R; ++r) {
    float* row = c + r * ldc;
    if (accumulate) {
      lo[r] = _mm256_add_ps(lo[r], _mm256_maskload_ps(row, m0));
      hi[r] = _mm256_add_ps(hi[r], _mm256_maskload_ps(row + 8, m1));
    }
    _mm256_maskstore_ps(row, m0, lo[r]);
    _mm256_maskstore_ps(row + 8, m1, hi[r]);
  }
}

// One instantiation per tile height, so every accumulator lives in a register.
template <size_t... H>
constexpr std::array<GemmTileFn, sizeof...(H)> tiles_by_height(std::index_sequence<H...>) {
  return {&tile_avx2<int(H) + 1>...};
}
constexpr auto kTiles = tiles_by_height(std::make_index_sequence<6>());

}  // namespace

void gemm_tile_avx2(int rows, int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc, int ncols,
                    bool accumulate) {
  if (rows >= 1 && rows <= 6) kTiles[rows - 1](rows, kc, ap, bp, c, ldc, ncols, accumulate);
}

}  // namespace mmx::cpu
