#include <cmath>

#include "backend/cpu/cpu_ops.hpp"
#include "core/cpu.hpp"
#include "core/thread_pool.hpp"

namespace mmx::cpu {

void layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps, Tensor& y) {
  const int64_t c = x.dim(-1), rows = x.numel() / (c ? c : 1);
  const float* in = x.data<float>();
  const float* w = weight.defined() ? weight.data<float>() : nullptr;
  const float* b = bias.defined() ? bias.data<float>() : nullptr;
  float* out = y.data<float>();
  static const bool avx2 = cpu_features().avx2;
  parallel_for(rows, grain_rows(c), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* row = in + r * c;
      if (avx2) {
        layer_norm_row_avx2(row, c, w, b, eps, out + r * c);
        continue;
      }
      // Mean and variance accumulate in double: closer to the float64 truth than torch's own fp32
      // reduction, so the remaining error is the reference's, not ours.
      double sum = 0;
      for (int64_t i = 0; i < c; ++i) sum += row[i];
      const double mean = sum / c;
      double sq = 0;
      for (int64_t i = 0; i < c; ++i) sq += (row[i] - mean) * (row[i] - mean);
      const float rstd = static_cast<float>(1.0 / std::sqrt(sq / c + eps));
      const float fmean = static_cast<float>(mean);
      float* o = out + r * c;
      for (int64_t i = 0; i < c; ++i) {
        float v = (row[i] - fmean) * rstd;
        if (w) v *= w[i];
        if (b) v += b[i];
        o[i] = v;
      }
    }
  });
}

void add_norm_ops(OpTable& ops) {
  ops.layer_norm = layer_norm;
}

}  // namespace mmx::cpu
