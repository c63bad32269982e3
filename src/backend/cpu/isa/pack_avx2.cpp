// Packing an nn.Linear weight [N, K] into the GEMM's panels is a transpose (panel rows are k, columns
// are output features): done 8 × 8 at a time in AVX registers, widening f16 (F16C) or bf16 on the way.
// The UNet packs its f16 weights on every call, so this runs at copy speed, not one element at a time.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "backend/cpu/gemm_packed.hpp"

namespace mmx::cpu {

namespace {

__attribute__((target("avx2,f16c"))) inline __m256 load8(const void* base, DType dtype, int64_t index) {
  if (dtype == DType::F32) return _mm256_loadu_ps(static_cast<const float*>(base) + index);
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(base) + index));
  if (dtype == DType::F16) return _mm256_cvtph_ps(h);
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));  // bf16: the high half of f32
}

__attribute__((target("avx2"))) inline void transpose8x8(__m256 r[8]) {
  __m256 t[8], u[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
    u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
    r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
  }
}

__attribute__((target("f16c"))) float scalar_at(const void* base, DType dtype, int64_t index) {
  if (dtype == DType::F32) return static_cast<const float*>(base)[index];
  uint16_t bits;
  std::memcpy(&bits, static_cast<const uint16_t*>(base) + index, 2);
  if (dtype == DType::F16) return _cvtsh_ss(bits);
  const uint32_t wide = static_cast<uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &wide, 4);
  return f;
}

}  // namespace

__attribute__((target("avx2,f16c"))) void pack_panel_avx2(const void* weight, DType dtype, int64_t k, int64_t ld,
                                                          int64_t row0, int64_t rows, int nr, float* dst) {
  const int64_t k8 = k / 8 * 8;
  for (int c0 = 0; c0 < nr; c0 += 8) {
    if (c0 + 8 <= rows) {  // eight real rows: 8 × 8 blocks along k
      for (int64_t p0 = 0; p0 < k8; p0 += 8) {
        __m256 r[8];
        for (int i = 0; i < 8; ++i) r[i] = load8(weight, dtype, (row0 + c0 + i) * ld + p0);
        transpose8x8(r);
        for (int i = 0; i < 8; ++i) _mm256_storeu_ps(dst + (p0 + i) * nr + c0, r[i]);
      }
      for (int64_t p = k8; p < k; ++p)
        for (int i = 0; i < 8; ++i) dst[p * nr + c0 + i] = scalar_at(weight, dtype, (row0 + c0 + i) * ld + p);
      continue;
    }
    for (int64_t p = 0; p < k; ++p)  // the panel's last, partial group of rows; zeros past the weight
      for (int i = 0; i < 8; ++i)
        dst[p * nr + c0 + i] = c0 + i < rows ? scalar_at(weight, dtype, (row0 + c0 + i) * ld + p) : 0.f;
  }
}

__attribute__((target("avx2"))) void pack_tile_rows_avx2(const float* a, int64_t lda, int r, int64_t kc, float* dst) {
  // dst[p·r + rr] = a[rr·lda + p]: groups of 8 rows, 8 × 8 transposes along p, the last group masked.
  const int64_t k8 = kc / 8 * 8;
  for (int rr0 = 0; rr0 < r; rr0 += 8) {
    const int g = std::min(8, r - rr0);
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(g), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    for (int64_t p0 = 0; p0 < k8; p0 += 8) {
      __m256 v[8];
      for (int i = 0; i < 8; ++i) v[i] = i < g ? _mm256_loadu_ps(a + (rr0 + i) * lda + p0) : _mm256_setzero_ps();
      transpose8x8(v);
      if (g == 8)
        for (int i = 0; i < 8; ++i) _mm256_storeu_ps(dst + (p0 + i) * r + rr0, v[i]);
      else
        for (int i = 0; i < 8; ++i) _mm256_maskstore_ps(dst + (p0 + i) * r + rr0, mask, v[i]);
    }
    for (int64_t p = k8; p < kc; ++p)
      for (int i = 0; i < g; ++i) dst[p * r + rr0 + i] = a[(rr0 + i) * lda + p];
  }
}

}  // namespace mmx::cpu
