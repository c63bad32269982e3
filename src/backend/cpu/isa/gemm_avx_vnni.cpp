// The 256-bit int8 micro-kernel for CPUs with AVX-VNNI but no AVX-512 (Intel Alder Lake and later desktop
// parts): 16 ymm registers hold 6 rows × 16 columns of int32 sums, so a 32-column panel is swept in two
// halves, each reading its 64 bytes of every 128-byte K-group row.
#include <immintrin.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <utility>

#include "backend/cpu/gemm_lowp.hpp"

namespace mmx::cpu {

namespace {

template <int R>
__attribute__((target("avx2,avxvnni"))) void half_tile(int64_t kc, const uint8_t* A, int64_t lda, const char* B,
                                                       int32_t* C, int64_t ldc, int ncols, bool accumulate) {
  __m256i lo[R], hi[R];
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r) lo[r] = hi[r] = _mm256_setzero_si256();
  for (int64_t p = 0; p < kc; p += 4) {
    const __m256i b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(B));
    const __m256i b1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(B + 32));
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
      int32_t v;
      std::memcpy(&v, A + r * lda + p, sizeof v);
      const __m256i x = _mm256_set1_epi32(v);
      lo[r] = _mm256_dpbusd_avx_epi32(lo[r], x, b0);
      hi[r] = _mm256_dpbusd_avx_epi32(hi[r], x, b1);
    }
    B += 128;
  }
  alignas(32) int32_t row[16];
  for (int r = 0; r < R; ++r) {
    _mm256_store_si256(reinterpret_cast<__m256i*>(row), lo[r]);
    _mm256_store_si256(reinterpret_cast<__m256i*>(row + 8), hi[r]);
    int32_t* out = C + r * ldc;
    for (int col = 0; col < ncols; ++col) out[col] = accumulate ? out[col] + row[col] : row[col];
  }
}

template <int R>
void tile(int, int64_t kc, const void* a, int64_t lda, const void* panel, void* c, int64_t ldc, int ncols,
          bool accumulate) {
  const uint8_t* A = static_cast<const uint8_t*>(a);
  const char* B = static_cast<const char*>(panel);
  int32_t* C = static_cast<int32_t*>(c);
  half_tile<R>(kc, A, lda, B, C, ldc, ncols < 16 ? ncols : 16, accumulate);
  if (ncols > 16) half_tile<R>(kc, A, lda, B + 64, C + 16, ldc, ncols - 16, accumulate);
}

template <size_t... H>
constexpr std::array<LowpTileFn, sizeof...(H)> tiles(std::index_sequence<H...>) {
  return {&tile<int(H) + 1>...};
}
constexpr auto kTiles = tiles(std::make_index_sequence<6>());

}  // namespace

void tile_int8_avx_vnni(int rows, int64_t kc, const void* a, int64_t lda, const void* panel, void* c, int64_t ldc,
                        int ncols, bool accumulate) {
  if (rows >= 1 && rows <= 6) kTiles[rows - 1](rows, kc, a, lda, panel, c, ldc, ncols, accumulate);
}

}  // namespace mmx::cpu
