// Attention as two GEMMs per (batch, head, block of queries): scores = q·kᵀ·scale, masked softmax,
// out = probs·v. Heads are read in place from the [B, T, heads·D] projections (leading dimension
// heads·D), so nothing is transposed or copied; the score buffer is one block × Tk per thread.
#include <omp.h>

#include <cmath>
#include <vector>

#include "backend/cpu/cpu_ops.hpp"

namespace mmx::cpu {

namespace {
constexpr int64_t kQueryBlock = 256;

// keep[j] for query row i: the key is not padding and, when causal, not after the query.
void fill_keep(uint8_t* keep, const int64_t* key_mask, int64_t tk, bool causal, int64_t query) {
  for (int64_t j = 0; j < tk; ++j) keep[j] = (!key_mask || key_mask[j] != 0) && (!causal || j <= query);
}
}  // namespace

void attention(const Tensor& q, const Tensor& k, const Tensor& v, int64_t heads, const Tensor& key_padding_mask,
               bool causal, const Tensor& score_bias, Tensor& y) {
  const int64_t batch = q.dim(0), tq = q.dim(1), tk = k.dim(1), c = q.dim(2), d = c / heads;
  const float scale = 1.f / std::sqrt(static_cast<float>(d));
  const float *qp = q.data<float>(), *kp = k.data<float>(), *vp = v.data<float>();
  const int64_t* mask = key_padding_mask.defined() ? key_padding_mask.data<int64_t>() : nullptr;
  const float* bias = score_bias.defined() ? score_bias.data<float>() : nullptr;
  float* out = y.data<float>();
  const int64_t blocks = (tq + kQueryBlock - 1) / kQueryBlock;
  const int64_t tasks = batch * heads * blocks;
#pragma omp parallel
  {
    std::vector<float> scores(static_cast<size_t>(std::min(tq, kQueryBlock) * tk));
    std::vector<uint8_t> keep(static_cast<size_t>(tk));
#pragma omp for schedule(dynamic)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t b = task / (heads * blocks), h = (task / blocks) % heads, q0 = (task % blocks) * kQueryBlock;
      const int64_t rows = std::min(kQueryBlock, tq - q0);
      const float* qh = qp + (b * tq + q0) * c + h * d;
      const float* kh = kp + b * tk * c + h * d;
      const float* vh = vp + b * tk * c + h * d;
      gemm(false, true, rows, tk, d, scale, qh, c, kh, c, 0.f, scores.data(), tk);
      for (int64_t i = 0; i < rows; ++i) {
        float* row = scores.data() + i * tk;
        if (bias) {
          const float* bias_row = bias + ((b * heads + h) * tq + q0 + i) * tk;
          for (int64_t j = 0; j < tk; ++j) row[j] += bias_row[j];
        }
        fill_keep(keep.data(), mask ? mask + b * tk : nullptr, tk, causal, q0 + i);
        softmax_row_masked(row, keep.data(), tk);
      }
      gemm(false, false, rows, d, tk, 1.f, scores.data(), tk, vh, c, 0.f, out + (b * tq + q0) * c + h * d, c);
    }
  }
}

void attention_ref(const Tensor& q, const Tensor& k, const Tensor& v, int64_t heads, const Tensor& key_padding_mask,
                   bool causal, const Tensor& score_bias, Tensor& y) {
  const int64_t batch = q.dim(0), tq = q.dim(1), tk = k.dim(1), c = q.dim(2), d = c / heads;
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  const float *qp = q.data<float>(), *kp = k.data<float>(), *vp = v.data<float>();
  const int64_t* mask = key_padding_mask.defined() ? key_padding_mask.data<int64_t>() : nullptr;
  const float* bias = score_bias.defined() ? score_bias.data<float>() : nullptr;
  float* out = y.data<float>();
  std::vector<float> row(static_cast<size_t>(tk));
  std::vector<uint8_t> keep(static_cast<size_t>(tk));
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < tq; ++i) {
        for (int64_t j = 0; j < tk; ++j) {
          double s = 0;
          for (int64_t e = 0; e < d; ++e) s += double(qp[(b * tq + i) * c + h * d + e]) * kp[(b * tk + j) * c + h * d + e];
          row[j] = static_cast<float>(s * scale + (bias ? bias[((b * heads + h) * tq + i) * tk + j] : 0.0));
        }
        fill_keep(keep.data(), mask ? mask + b * tk : nullptr, tk, causal, i);
        softmax_row_masked(row.data(), keep.data(), tk);
        for (int64_t e = 0; e < d; ++e) {
          double s = 0;
          for (int64_t j = 0; j < tk; ++j) s += double(row[j]) * vp[(b * tk + j) * c + h * d + e];
          out[(b * tq + i) * c + h * d + e] = static_cast<float>(s);
        }
      }
}

}  // namespace mmx::cpu
