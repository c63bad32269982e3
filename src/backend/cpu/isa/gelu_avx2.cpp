// GELU (erf form), SiLU and CLIP's quick_gelu on 8 floats at a time with AVX2 + FMA: the same exp and
// Abramowitz & Stegun erf as vec_math.hpp, written with intrinsics because GCC 12 does not vectorise
// the scalar forms (glibc's expf per element made SiLU and quick_gelu cost as much as a GEMM).
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "backend/cpu/isa/exp_avx2.hpp"
#include "backend/cpu/vec_math.hpp"

namespace mmx::cpu {

namespace {

__attribute__((target("avx2,fma"))) inline __m256 gelu_erf_avx2(__m256 v) {
  const __m256 sign_mask = _mm256_set1_ps(-0.f);
  const __m256 z = _mm256_mul_ps(v, _mm256_set1_ps(0.70710678118654752f));
  const __m256 a = _mm256_min_ps(_mm256_andnot_ps(sign_mask, z), _mm256_set1_ps(9.f));
  const __m256 t = _mm256_div_ps(_mm256_set1_ps(1.f), _mm256_fmadd_ps(_mm256_set1_ps(0.3275911f), a, _mm256_set1_ps(1.f)));
  __m256 p = _mm256_set1_ps(1.061405429f);
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.453152027f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.421413741f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.284496736f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.254829592f));
  const __m256 e = exp_avx2(_mm256_mul_ps(_mm256_xor_ps(a, sign_mask), a));  // exp(−a²)
  const __m256 y = _mm256_fnmadd_ps(_mm256_mul_ps(p, t), e, _mm256_set1_ps(1.f));
  const __m256 erf = _mm256_or_ps(y, _mm256_and_ps(z, sign_mask));  // sign of z
  return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), v), _mm256_add_ps(_mm256_set1_ps(1.f), erf));
}

}  // namespace

__attribute__((target("avx2,fma"))) void gelu_erf_span_avx2(float* x, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, gelu_erf_avx2(_mm256_loadu_ps(x + i)));
  for (; i < n; ++i) x[i] = 0.5f * x[i] * (1.f + erf_approx(x[i] * 0.70710678118654752f));
}

namespace {
// x·σ(k·x) = x / (1 + e^(−k·x)); e's argument is kept ≤ 88 (the result is then x·~0 as in float math).
__attribute__((target("avx2,fma"))) inline __m256 x_sigmoid_avx2(__m256 v, float k) {
  const __m256 z = _mm256_min_ps(_mm256_mul_ps(v, _mm256_set1_ps(-k)), _mm256_set1_ps(88.f));
  return _mm256_div_ps(v, _mm256_add_ps(_mm256_set1_ps(1.f), exp_avx2(z)));
}

__attribute__((target("avx2,fma"))) void x_sigmoid_span_avx2(float* x, int64_t n, float k) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, x_sigmoid_avx2(_mm256_loadu_ps(x + i), k));
  for (; i < n; ++i) x[i] = x[i] / (1.f + exp_approx(std::min(-k * x[i], 88.f)));
}
}  // namespace

void silu_span_avx2(float* x, int64_t n) { x_sigmoid_span_avx2(x, n, 1.f); }
void quick_gelu_span_avx2(float* x, int64_t n) { x_sigmoid_span_avx2(x, n, 1.702f); }

// GCC 12's avx512fintrin.h seeds these intrinsics with _mm512_undefined_*() and then warns about it.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace {
// The same GELU on 16 lanes (AVX-512F only: the float logic through integer ops), step for step the
// arithmetic of gelu_erf_avx2 and exp_avx2, so both give identical results.
__attribute__((target("avx512f"))) inline __m512 exp_avx512(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-87.f));
  const __m512 t = _mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f));
  const __m512 n = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.42860682030941723212e-6f), r);
  __m512 p = _mm512_set1_ps(1.f / 5040.f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 720.f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 120.f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 24.f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 6.f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f));
  const __m512i bits = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
  return _mm512_mul_ps(p, _mm512_castsi512_ps(bits));
}

__attribute__((target("avx512f"))) inline __m512 gelu_erf_avx512(__m512 v) {
  const __m512i sign = _mm512_set1_epi32(static_cast<int>(0x80000000u));
  const __m512 z = _mm512_mul_ps(v, _mm512_set1_ps(0.70710678118654752f));
  const __m512i zi = _mm512_castps_si512(z);
  const __m512 a = _mm512_min_ps(_mm512_castsi512_ps(_mm512_andnot_si512(sign, zi)), _mm512_set1_ps(9.f));
  const __m512 t = _mm512_div_ps(_mm512_set1_ps(1.f), _mm512_fmadd_ps(_mm512_set1_ps(0.3275911f), a, _mm512_set1_ps(1.f)));
  __m512 p = _mm512_set1_ps(1.061405429f);
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.453152027f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.421413741f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.284496736f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.254829592f));
  const __m512 minus_a = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(a), sign));
  const __m512 e = exp_avx512(_mm512_mul_ps(minus_a, a));  // exp(−a²)
  const __m512 y = _mm512_fnmadd_ps(_mm512_mul_ps(p, t), e, _mm512_set1_ps(1.f));
  const __m512 erf = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(y), _mm512_and_si512(zi, sign)));
  return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), v), _mm512_add_ps(_mm512_set1_ps(1.f), erf));
}
}  // namespace

__attribute__((target("avx512f"))) void gelu_erf_span_avx512(float* x, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, gelu_erf_avx512(_mm512_loadu_ps(x + i)));
  gelu_erf_span_avx2(x + i, n - i);  // the tail, 8 and 1 at a time
}

}  // namespace mmx::cpu
