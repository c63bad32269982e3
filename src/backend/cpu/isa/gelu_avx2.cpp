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

}  // namespace mmx::cpu
