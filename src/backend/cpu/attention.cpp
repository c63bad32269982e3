// Fused attention, flash-style: for each (batch, head, block of queries) the keys are visited a block at
// a time; the block's scores q·kᵀ·scale (+ bias, masked) are exponentiated against a running row maximum,
// the running sums and outputs are rescaled when that maximum grows (online softmax), and the block's
// probabilities are multiplied into V at once. No score row longer than one key block ever exists, so
// SDXL's 4096-token self-attention keeps its working set (64 × 256 scores, 64 × D outputs) in L2.
// Heads are read in place from the [B, T, heads·D] projections (leading dimension heads·D).
#include <omp.h>

#include <cmath>
#include <limits>
#include <vector>

#include "backend/cpu/cpu_ops.hpp"

namespace mmx::cpu {

namespace {
constexpr int64_t kQueryBlock = 64, kKeyBlock = 256;

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
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
#pragma omp parallel if (tasks > 1)
  {
    std::vector<float> scores(static_cast<size_t>(kQueryBlock * kKeyBlock)), acc(static_cast<size_t>(kQueryBlock * d));
    std::vector<float> row_max(kQueryBlock), row_sum(kQueryBlock);
    std::vector<uint8_t> keep(static_cast<size_t>(kKeyBlock));
#pragma omp for schedule(dynamic)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t b = task / (heads * blocks), h = (task / blocks) % heads, q0 = (task % blocks) * kQueryBlock;
      const int64_t rows = std::min(kQueryBlock, tq - q0);
      const float* qh = qp + (b * tq + q0) * c + h * d;
      const float* kh = kp + b * tk * c + h * d;
      const float* vh = vp + b * tk * c + h * d;
      const int64_t* key_mask = mask ? mask + b * tk : nullptr;
      std::fill(row_max.begin(), row_max.end(), kNegInf);
      std::fill(row_sum.begin(), row_sum.end(), 0.f);
      std::fill(acc.begin(), acc.begin() + rows * d, 0.f);
      // Causal: keys after the block's last query are hidden from every row of the block.
      const int64_t key_end = causal ? std::min(tk, q0 + rows) : tk;
      for (int64_t k0 = 0; k0 < key_end; k0 += kKeyBlock) {
        const int64_t kb = std::min(kKeyBlock, key_end - k0);
        gemm(false, true, rows, kb, d, scale, qh, c, kh + k0 * c, c, 0.f, scores.data(), kb);
        for (int64_t i = 0; i < rows; ++i) {
          float* row = scores.data() + i * kb;
          if (bias) {
            const float* bias_row = bias + ((b * heads + h) * tq + q0 + i) * tk + k0;
            for (int64_t j = 0; j < kb; ++j) row[j] += bias_row[j];
          }
          for (int64_t j = 0; j < kb; ++j)
            keep[j] = (!key_mask || key_mask[k0 + j] != 0) && (!causal || k0 + j <= q0 + i);
          float block_max = kNegInf;
          for (int64_t j = 0; j < kb; ++j)
            if (keep[j]) block_max = std::max(block_max, row[j]);
          if (block_max == kNegInf) {  // nothing kept in this block: the row contributes nothing
            std::fill(row, row + kb, 0.f);
            continue;
          }
          const float new_max = std::max(row_max[i], block_max);
          const float rescale = row_max[i] == kNegInf ? 0.f : std::exp(row_max[i] - new_max);
          row_sum[i] = row_sum[i] * rescale + softmax_exp(row, keep.data(), kb, new_max);
          if (rescale != 1.f)
            for (float *o = acc.data() + i * d, *e = o + d; o < e; ++o) *o *= rescale;
          row_max[i] = new_max;
        }
        gemm(false, false, rows, d, kb, 1.f, scores.data(), kb, vh + k0 * c, c, 1.f, acc.data(), d);
      }
      for (int64_t i = 0; i < rows; ++i) {
        float* dst = out + (b * tq + q0 + i) * c + h * d;
        if (row_sum[i] == 0.f) {
          // No key kept: transformers adds finfo.min to every score, so the row is uniform over all keys.
          for (int64_t e = 0; e < d; ++e) {
            double s = 0;
            for (int64_t j = 0; j < tk; ++j) s += vh[j * c + e];
            dst[e] = static_cast<float>(s / static_cast<double>(tk));
          }
          continue;
        }
        const float inv = 1.f / row_sum[i];
        for (int64_t e = 0; e < d; ++e) dst[e] = acc[i * d + e] * inv;
      }
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
