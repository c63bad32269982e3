// The 512-bit low-precision micro-kernels: a tile of up to 14 rows × 32 columns in 28 zmm accumulators,
// as the f32 kernel (gemm_avx512.cpp), but each instruction multiplies a pair of bf16 values (vdpbf16ps,
// f32 sums) or a quadruple of u8 × s8 values (vpdpbusd, int32 sums) per column: per K group, two loads
// of the panel's 128-byte row and one 32-bit broadcast of A per row. Also the row conversions.
// GCC 12's AVX-512 headers build masked intrinsics on _mm512_undefined_*(), which -Wuninitialized
// reports once they are inlined into a target("avx512…") function: a false positive in the headers.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <utility>

#include "backend/cpu/gemm_lowp.hpp"

namespace mmx::cpu {

namespace {

constexpr int kPrefetchBytes = 2048;  // the panel, 16 K groups ahead

inline int32_t load32(const void* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline __mmask16 low_mask(int ncols) { return ncols >= 16 ? __mmask16(0xffff) : __mmask16((1u << ncols) - 1); }
inline __mmask16 high_mask(int ncols) {
  return ncols >= 32 ? __mmask16(0xffff) : ncols <= 16 ? __mmask16(0) : __mmask16((1u << (ncols - 16)) - 1);
}

template <int R>
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16"))) void tile_bf16(int, int64_t kc, const void* a, int64_t lda,
                                                                       const void* panel, void* c, int64_t ldc,
                                                                       int ncols, bool accumulate) {
  const uint16_t* A = static_cast<const uint16_t*>(a);
  const char* B = static_cast<const char*>(panel);
  __m512 lo[R], hi[R];
#pragma GCC unroll 14
  for (int r = 0; r < R; ++r) lo[r] = hi[r] = _mm512_setzero_ps();
#pragma GCC unroll 2
  for (int64_t p = 0; p < kc; p += 2) {
    const __m512bh b0 = (__m512bh)_mm512_loadu_si512(B), b1 = (__m512bh)_mm512_loadu_si512(B + 64);
    _mm_prefetch(B + kPrefetchBytes, _MM_HINT_T0);
    _mm_prefetch(B + kPrefetchBytes + 64, _MM_HINT_T0);
#pragma GCC unroll 14
    for (int r = 0; r < R; ++r) {
      const __m512bh x = (__m512bh)_mm512_set1_epi32(load32(A + r * lda + p));
      lo[r] = _mm512_dpbf16_ps(lo[r], x, b0);
      hi[r] = _mm512_dpbf16_ps(hi[r], x, b1);
    }
    B += 128;
  }
  float* C = static_cast<float*>(c);
  const __mmask16 m0 = low_mask(ncols), m1 = high_mask(ncols);
#pragma GCC unroll 14
  for (int r = 0; r < R; ++r) {
    float* row = C + r * ldc;
    if (accumulate) {
      lo[r] = _mm512_add_ps(lo[r], _mm512_maskz_loadu_ps(m0, row));
      hi[r] = _mm512_add_ps(hi[r], _mm512_maskz_loadu_ps(m1, row + 16));
    }
    _mm512_mask_storeu_ps(row, m0, lo[r]);
    _mm512_mask_storeu_ps(row + 16, m1, hi[r]);
  }
}

template <int R>
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"))) void tile_int8(int, int64_t kc, const void* a, int64_t lda,
                                                                       const void* panel, void* c, int64_t ldc,
                                                                       int ncols, bool accumulate) {
  const uint8_t* A = static_cast<const uint8_t*>(a);
  const char* B = static_cast<const char*>(panel);
  __m512i lo[R], hi[R];
#pragma GCC unroll 14
  for (int r = 0; r < R; ++r) lo[r] = hi[r] = _mm512_setzero_si512();
#pragma GCC unroll 2
  for (int64_t p = 0; p < kc; p += 4) {
    const __m512i b0 = _mm512_loadu_si512(B), b1 = _mm512_loadu_si512(B + 64);
    _mm_prefetch(B + kPrefetchBytes, _MM_HINT_T0);
    _mm_prefetch(B + kPrefetchBytes + 64, _MM_HINT_T0);
#pragma GCC unroll 14
    for (int r = 0; r < R; ++r) {
      const __m512i x = _mm512_set1_epi32(load32(A + r * lda + p));
      lo[r] = _mm512_dpbusd_epi32(lo[r], x, b0);
      hi[r] = _mm512_dpbusd_epi32(hi[r], x, b1);
    }
    B += 128;
  }
  int32_t* C = static_cast<int32_t*>(c);
  const __mmask16 m0 = low_mask(ncols), m1 = high_mask(ncols);
#pragma GCC unroll 14
  for (int r = 0; r < R; ++r) {
    int32_t* row = C + r * ldc;
    if (accumulate) {
      lo[r] = _mm512_add_epi32(lo[r], _mm512_maskz_loadu_epi32(m0, row));
      hi[r] = _mm512_add_epi32(hi[r], _mm512_maskz_loadu_epi32(m1, row + 16));
    }
    _mm512_mask_storeu_epi32(row, m0, lo[r]);
    _mm512_mask_storeu_epi32(row + 16, m1, hi[r]);
  }
}

template <size_t... H>
constexpr std::array<LowpTileFn, sizeof...(H)> bf16_tiles(std::index_sequence<H...>) {
  return {&tile_bf16<int(H) + 1>...};
}
template <size_t... H>
constexpr std::array<LowpTileFn, sizeof...(H)> int8_tiles(std::index_sequence<H...>) {
  return {&tile_int8<int(H) + 1>...};
}
constexpr auto kBf16Tiles = bf16_tiles(std::make_index_sequence<14>());
constexpr auto kInt8Tiles = int8_tiles(std::make_index_sequence<14>());

}  // namespace

void tile_bf16_avx512(int rows, int64_t kc, const void* a, int64_t lda, const void* panel, void* c, int64_t ldc,
                      int ncols, bool accumulate) {
  if (rows >= 1 && rows <= 14) kBf16Tiles[rows - 1](rows, kc, a, lda, panel, c, ldc, ncols, accumulate);
}

void tile_int8_avx512(int rows, int64_t kc, const void* a, int64_t lda, const void* panel, void* c, int64_t ldc,
                      int ncols, bool accumulate) {
  if (rows >= 1 && rows <= 14) kInt8Tiles[rows - 1](rows, kc, a, lda, panel, c, ldc, ncols, accumulate);
}

// vcvtneps2bf16: round to nearest even, as f32_to_bf16 (it also flushes f32 denormals to zero).
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16"))) void convert_row_bf16_avx512(const float* src, int64_t k,
                                                                                     uint16_t* dst) {
  int64_t p = 0;
  for (; p + 16 <= k; p += 16)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + p), (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(src + p)));
  if (p < k) {
    const __mmask16 m = __mmask16((1u << (k - p)) - 1);
    const __m256i h = (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, src + p));
    _mm256_mask_storeu_epi16(dst + p, m, h);
  }
}

// The arithmetic of quantize_row_int8_scalar (gemm_lowp.cpp) on 16 lanes: the same max, the same f32
// product, rounded to nearest even by vcvtps2dq.
__attribute__((target("avx512f,avx512bw,avx512vl"))) float quantize_row_int8_avx512(const float* src, int64_t k,
                                                                           uint8_t* dst) {
  __m512 vmax = _mm512_setzero_ps();
  int64_t p = 0;
  for (; p + 16 <= k; p += 16) vmax = _mm512_max_ps(vmax, _mm512_abs_ps(_mm512_loadu_ps(src + p)));
  if (p < k) vmax = _mm512_max_ps(vmax, _mm512_abs_ps(_mm512_maskz_loadu_ps(__mmask16((1u << (k - p)) - 1), src + p)));
  const float absmax = _mm512_reduce_max_ps(vmax);
  const __m512 inv = _mm512_set1_ps(absmax > 0.f ? 127.f / absmax : 0.f);
  const __m512i lo = _mm512_set1_epi32(-127), hi = _mm512_set1_epi32(127), offset = _mm512_set1_epi32(128);
  for (p = 0; p < k; p += 16) {
    const __mmask16 m = k - p >= 16 ? __mmask16(0xffff) : __mmask16((1u << (k - p)) - 1);
    __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, src + p), inv));
    q = _mm512_add_epi32(_mm512_min_epi32(_mm512_max_epi32(q, lo), hi), offset);
    _mm_mask_storeu_epi8(dst + p, m, _mm512_cvtepi32_epi8(q));
  }
  return absmax / 127.f;
}

}  // namespace mmx::cpu
