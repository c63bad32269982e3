// The exponential pass of a masked softmax row, 8 floats at a time (AVX2 + FMA); the row passes of
// attention and LayerNorm.
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "backend/cpu/cpu_ops.hpp"
#include "backend/cpu/isa/exp_avx2.hpp"
#include "backend/cpu/vec_math.hpp"

namespace mmx::cpu {

__attribute__((target("avx2,fma"))) float softmax_exp_avx2(float* row, const uint8_t* keep, int64_t n, float max) {
  const __m256 m = _mm256_set1_ps(max);
  __m256 acc = _mm256_setzero_ps();
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    __m256 e = exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(row + j), m));
    if (keep) {  // hidden keys give exactly 0, as exp(finfo.min − max) does in transformers
      const __m128i k8 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(keep + j));
      const __m256i k32 = _mm256_cvtepu8_epi32(k8);
      e = _mm256_and_ps(e, _mm256_castsi256_ps(_mm256_cmpgt_epi32(k32, _mm256_setzero_si256())));
    }
    _mm256_storeu_ps(row + j, e);
    acc = _mm256_add_ps(acc, e);
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, acc);
  float sum = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
  for (; j < n; ++j) {
    const float e = (!keep || keep[j]) ? exp_approx(row[j] - max) : 0.f;
    row[j] = e;
    sum += e;
  }
  return sum;
}

__attribute__((target("avx2,fma"))) float scale_and_max_avx2(float* row, int64_t n, float scale) {
  const __m256 s = _mm256_set1_ps(scale);
  __m256 m = _mm256_set1_ps(-INFINITY);
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256 v = _mm256_mul_ps(_mm256_loadu_ps(row + j), s);
    _mm256_storeu_ps(row + j, v);
    m = _mm256_max_ps(m, v);
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, m);
  float max = lanes[0];
  for (int i = 1; i < 8; ++i) max = std::max(max, lanes[i]);
  for (; j < n; ++j) {
    row[j] *= scale;
    max = std::max(max, row[j]);
  }
  return max;
}

// One LayerNorm row: mean and variance summed in double (4 lanes), then (x − mean)·rstd·w + b in float
// with separate multiplies and adds, the scalar code's arithmetic exactly.
__attribute__((target("avx2"))) void layer_norm_row_avx2(const float* row, int64_t c, const float* w, const float* b,
                                                         float eps, float* out) {
  __m256d acc = _mm256_setzero_pd();
  int64_t i = 0;
  for (; i + 4 <= c; i += 4) acc = _mm256_add_pd(acc, _mm256_cvtps_pd(_mm_loadu_ps(row + i)));
  alignas(32) double lanes[4];
  _mm256_store_pd(lanes, acc);
  double sum = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
  for (; i < c; ++i) sum += row[i];
  const double mean = sum / static_cast<double>(c);
  const __m256d vmean = _mm256_set1_pd(mean);
  acc = _mm256_setzero_pd();
  for (i = 0; i + 4 <= c; i += 4) {
    const __m256d d = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(row + i)), vmean);
    acc = _mm256_add_pd(acc, _mm256_mul_pd(d, d));
  }
  _mm256_store_pd(lanes, acc);
  double sq = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
  for (; i < c; ++i) sq += (row[i] - mean) * (row[i] - mean);
  const float rstd = static_cast<float>(1.0 / std::sqrt(sq / static_cast<double>(c) + eps));
  const float fmean = static_cast<float>(mean);
  const __m256 vm = _mm256_set1_ps(fmean), vr = _mm256_set1_ps(rstd);
  for (i = 0; i + 8 <= c; i += 8) {
    __m256 v = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(row + i), vm), vr);
    if (w) v = _mm256_mul_ps(v, _mm256_loadu_ps(w + i));
    if (b) v = _mm256_add_ps(v, _mm256_loadu_ps(b + i));
    _mm256_storeu_ps(out + i, v);
  }
  for (; i < c; ++i) {
    float v = (row[i] - fmean) * rstd;
    if (w) v *= w[i];
    if (b) v += b[i];
    out[i] = v;
  }
}

}  // namespace mmx::cpu
