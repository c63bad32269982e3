#include <algorithm>
#include <cmath>
#include <limits>

#include "backend/cpu/cpu_ops.hpp"
#include "core/cpu.hpp"
#include "core/thread_pool.hpp"
#include "backend/cpu/vec_math.hpp"

namespace mmx::cpu {

float softmax_exp(float* row, const uint8_t* keep, int64_t n, float max) {
  static const bool avx2 = cpu_features().avx2 && cpu_features().fma;
  if (avx2) return softmax_exp_avx2(row, keep, n, max);
  float sum = 0.f;
  for (int64_t j = 0; j < n; ++j) {
    const float e = (!keep || keep[j]) ? exp_approx(row[j] - max) : 0.f;
    row[j] = e;
    sum += e;
  }
  return sum;
}

void softmax_row_masked(float* row, const uint8_t* keep, int64_t n) {
  float max = -std::numeric_limits<float>::infinity();
  bool any = false;
  for (int64_t j = 0; j < n; ++j)
    if (!keep || keep[j]) {
      max = std::max(max, row[j]);
      any = true;
    }
  if (!any) {
    std::fill(row, row + n, 1.f / static_cast<float>(n));
    return;
  }
  const float inv = 1.f / softmax_exp(row, keep, n, max);
  for (int64_t j = 0; j < n; ++j) row[j] *= inv;
}

void softmax(Tensor& x) {
  const int64_t n = x.dim(-1), rows = x.numel() / (n ? n : 1);
  float* data = x.data<float>();
  parallel_for(rows, grain_rows(n), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) softmax_row_masked(data + r * n, nullptr, n);
  });
}

void add_softmax_ops(OpTable& ops) {
  ops.softmax = softmax;
}

}  // namespace mmx::cpu
