// Fused attention, flash-style: for each (batch, head, block of queries) the keys are visited a block at
// a time; the block's scores q·kᵀ·scale (+ bias, masked) are exponentiated against a running row maximum,
// the running sums and outputs are rescaled when that maximum grows (online softmax), and the block's
// probabilities are multiplied into V at once. No score row longer than one key block ever exists, so
// SDXL's 4096-token self-attention keeps its working set (64 × 256 scores, 64 × D outputs) in L2.
// Heads are read in place from the [B, T, heads·D] projections (leading dimension heads·D).

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "backend/cpu/cpu_ops.hpp"
#include "backend/cpu/gemm_packed.hpp"
#include "core/thread_pool.hpp"

namespace mmx::cpu {

namespace {
constexpr int64_t kQueryBlock = 64, kKeyBlock = 256;

// out row i (stride c) = acc[i] / row_sum[i]. A row that kept no key is uniform over all keys instead:
// transformers adds finfo.min to every hidden score, so softmax gives each key 1/tk.
void finish_rows(const float* acc, const float* row_sum, int64_t rows, int64_t d, const float* vh, int64_t tk,
                 int64_t c, float* out) {
  for (int64_t i = 0; i < rows; ++i) {
    float* dst = out + i * c;
    if (row_sum[i] == 0.f) {
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

// keep[j] for query row i: the key is not padding and, when causal, not after the query.
void fill_keep(uint8_t* keep, const int64_t* key_mask, int64_t tk, bool causal, int64_t query) {
  for (int64_t j = 0; j < tk; ++j) keep[j] = (!key_mask || key_mask[j] != 0) && (!causal || j <= query);
}
}  // namespace

namespace {

// With the packed GEMM kernels: per (batch, head) K and V are packed once into the kernel's panels (K
// transposed to [d][keys], V as [keys][d]), then every block of queries runs the micro-kernel on them
// directly; the online softmax in between is vectorised. Without them: dnnl_sgemm per block (below).
void attention_packed(const GemmKernel& kernel, const Tensor& q, const Tensor& k, const Tensor& v, int64_t heads,
                      const Tensor& key_padding_mask, bool causal, const Tensor& score_bias, Tensor& y) {
  const int64_t batch = q.dim(0), tq = q.dim(1), tk = k.dim(1), c = q.dim(2), d = c / heads;
  const int mr = kernel.mr, nr = kernel.nr;
  const float scale = 1.f / std::sqrt(static_cast<float>(d));
  const float *qp = q.data<float>(), *kp = k.data<float>(), *vp = v.data<float>();
  const int64_t* mask = key_padding_mask.defined() ? key_padding_mask.data<int64_t>() : nullptr;
  const float* bias = score_bias.defined() ? score_bias.data<float>() : nullptr;
  float* out = y.data<float>();
  const int64_t key_panels = (tk + nr - 1) / nr, dim_panels = (d + nr - 1) / nr;
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  parallel_for(batch * heads, 1, [&](int64_t first, int64_t end) {
    // One grow-only buffer per thread, carved into the packed K and V, the query block, its scores and
    // probabilities, outputs and row statistics (the lab's short texts call this 12 times per forward).
    const size_t sizes[] = {size_t(key_panels * d * nr), size_t(dim_panels * tk * nr), size_t(kQueryBlock * d),
                            size_t(kQueryBlock * kKeyBlock), size_t(kQueryBlock * kKeyBlock), size_t(kQueryBlock * d),
                            size_t(kQueryBlock), size_t(kQueryBlock)};
    size_t total = 0;
    for (size_t n : sizes) total += (n + 15) / 16 * 16;
    thread_local std::vector<float> buffer;
    if (buffer.size() < total) buffer.resize(total);
    float* parts[8];
    float* next = buffer.data();
    for (int i = 0; i < 8; ++i) {
      parts[i] = next;
      next += (sizes[i] + 15) / 16 * 16;
    }
    struct Span {
      float* p;
      float* data() const { return p; }
      float& operator[](size_t i) const { return p[i]; }
    };
    const Span k_panels{parts[0]}, v_panels{parts[1]}, q_packed{parts[2]}, scores{parts[3]}, p_packed{parts[4]},
        acc{parts[5]}, row_max{parts[6]}, row_sum{parts[7]};
    thread_local std::vector<uint8_t> keep;
    if (keep.size() < size_t(kKeyBlock)) keep.resize(kKeyBlock);
    for (int64_t bh = first; bh < end; ++bh) {
      const int64_t b = bh / heads, h = bh % heads;
      const float* kh = kp + b * tk * c + h * d;
      const float* vh = vp + b * tk * c + h * d;
      const int64_t* key_mask = mask ? mask + b * tk : nullptr;
      for (int64_t jp = 0; jp < key_panels; ++jp)  // K panel jp: [e][nr keys], a transpose
        pack_panel_avx2(kh, DType::F32, d, c, jp * nr, std::min<int64_t>(nr, tk - jp * nr), nr,
                        k_panels.data() + jp * d * nr);
      for (int64_t dp = 0; dp < dim_panels; ++dp) {  // V panel dp: [key][nr dims], rows copied
        const int width = static_cast<int>(std::min<int64_t>(nr, d - dp * nr));
        for (int64_t j = 0; j < tk; ++j) {
          float* dst = v_panels.data() + (dp * tk + j) * nr;
          std::memcpy(dst, vh + j * c + dp * nr, sizeof(float) * width);
          std::fill(dst + width, dst + nr, 0.f);
        }
      }
      for (int64_t q0 = 0; q0 < tq; q0 += kQueryBlock) {
        const int64_t rows = std::min(kQueryBlock, tq - q0);
        pack_rows(qp + (b * tq + q0) * c + h * d, c, 0, rows, 0, d, mr, q_packed.data());
        std::fill(row_max.data(), row_max.data() + kQueryBlock, kNegInf);
        std::fill(row_sum.data(), row_sum.data() + kQueryBlock, 0.f);
        std::fill(acc.data(), acc.data() + rows * d, 0.f);
        const int64_t key_end = causal ? std::min(tk, q0 + rows) : tk;
        for (int64_t k0 = 0; k0 < key_end; k0 += kKeyBlock) {  // k0 is a multiple of nr
          const int64_t kb = std::min(kKeyBlock, key_end - k0);
          for (int64_t jp = 0; jp * nr < kb; ++jp) {  // scores[rows, kb] = q · kᵀ
            const int ncols = static_cast<int>(std::min<int64_t>(nr, kb - jp * nr));
            const float* panel = k_panels.data() + (k0 / nr + jp) * d * nr;
            for (int64_t i0 = 0; i0 < rows; i0 += mr) {
              const int r = static_cast<int>(std::min<int64_t>(mr, rows - i0));
              kernel.tile(r, d, q_packed.data() + i0 * d, panel, scores.data() + i0 * kKeyBlock + jp * nr, kKeyBlock, ncols, false);
            }
          }
          // A block whose keys are all kept (no padding among them, not causal, no bias) takes the vector path.
          bool all_kept = !bias && !causal;
          if (all_kept && key_mask)
            for (int64_t j = 0; j < kb && all_kept; ++j) all_kept = key_mask[k0 + j] != 0;
          for (int64_t i = 0; i < rows; ++i) {
            float* row = scores.data() + i * kKeyBlock;
            const uint8_t* kept = nullptr;
            float block_max;
            if (all_kept) {
              block_max = scale_and_max_avx2(row, kb, scale);
            } else {
              const float* bias_row = bias ? bias + ((b * heads + h) * tq + q0 + i) * tk + k0 : nullptr;
              block_max = kNegInf;
              for (int64_t j = 0; j < kb; ++j) {
                row[j] = row[j] * scale + (bias_row ? bias_row[j] : 0.f);
                keep[j] = (!key_mask || key_mask[k0 + j] != 0) && (!causal || k0 + j <= q0 + i);
                if (keep[j]) block_max = std::max(block_max, row[j]);
              }
              kept = keep.data();
            }
            if (block_max == kNegInf) {  // nothing kept in this block: the row gains nothing from it
              std::fill(row, row + kb, 0.f);
              continue;
            }
            const float new_max = std::max(row_max[i], block_max);
            const float rescale = row_max[i] == kNegInf ? 0.f : std::exp(row_max[i] - new_max);
            row_sum[i] = row_sum[i] * rescale + softmax_exp(row, kept, kb, new_max);
            if (rescale != 1.f)
              for (float *o = acc.data() + i * d, *e = o + d; o < e; ++o) *o *= rescale;
            row_max[i] = new_max;
          }
          pack_rows(scores.data(), kKeyBlock, 0, rows, 0, kb, mr, p_packed.data());  // acc += p · v
          for (int64_t dp = 0; dp < dim_panels; ++dp) {
            const int ncols = static_cast<int>(std::min<int64_t>(nr, d - dp * nr));
            const float* panel = v_panels.data() + (dp * tk + k0) * nr;
            for (int64_t i0 = 0; i0 < rows; i0 += mr) {
              const int r = static_cast<int>(std::min<int64_t>(mr, rows - i0));
              kernel.tile(r, kb, p_packed.data() + i0 * kb, panel, acc.data() + i0 * d + dp * nr, d, ncols, true);
            }
          }
        }
        finish_rows(acc.data(), row_sum.data(), rows, d, vh, tk, c, out + (b * tq + q0) * c + h * d);
      }
    }
  });
}

}  // namespace

void attention(const Tensor& q, const Tensor& k, const Tensor& v, int64_t heads, const Tensor& key_padding_mask,
               bool causal, const Tensor& score_bias, Tensor& y) {
  if (const GemmKernel* kernel = gemm_kernel())
    return attention_packed(*kernel, q, k, v, heads, key_padding_mask, causal, score_bias, y);
  const int64_t batch = q.dim(0), tq = q.dim(1), tk = k.dim(1), c = q.dim(2), d = c / heads;
  const float scale = 1.f / std::sqrt(static_cast<float>(d));
  const float *qp = q.data<float>(), *kp = k.data<float>(), *vp = v.data<float>();
  const int64_t* mask = key_padding_mask.defined() ? key_padding_mask.data<int64_t>() : nullptr;
  const float* bias = score_bias.defined() ? score_bias.data<float>() : nullptr;
  float* out = y.data<float>();
  const int64_t blocks = (tq + kQueryBlock - 1) / kQueryBlock;
  const int64_t tasks = batch * heads * blocks;
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  parallel_for(tasks, 1, [&](int64_t first, int64_t end) {
    std::vector<float> scores(static_cast<size_t>(kQueryBlock * kKeyBlock)), acc(static_cast<size_t>(kQueryBlock * d));
    std::vector<float> row_max(kQueryBlock), row_sum(kQueryBlock);
    std::vector<uint8_t> keep(static_cast<size_t>(kKeyBlock));
    for (int64_t task = first; task < end; ++task) {
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
      finish_rows(acc.data(), row_sum.data(), rows, d, vh, tk, c, out + (b * tq + q0) * c + h * d);
    }
  });
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

void add_attention_ops(OpTable& ops) {
  ops.attention = attention;
}

}  // namespace mmx::cpu
