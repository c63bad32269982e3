// Image ops for the diffusion models: 2-D convolution (im2col in bounded row tiles + the GEMM), group
// normalisation, nearest 2× upsampling. NCHW, F32 activations; F32, F16 or BF16 convolution weights.
#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/cpu/cpu_ops.hpp"
#include "backend/cpu/gemm_packed.hpp"

namespace mmx::cpu {

namespace {
// The im2col buffer holds at most this many floats (32 MiB), so a 1024² SDXL VAE layer never needs
// the whole [C·k·k, H·W] matrix at once.
constexpr int64_t kMaxColumnFloats = int64_t(8) << 20;
}  // namespace

void conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride, int64_t padding, Tensor& y) {
  const int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), w = x.dim(3);
  const int64_t o = weight.dim(0), kh = weight.dim(2), kw = weight.dim(3);
  const int64_t ho = y.dim(2), wo = y.dim(3), k = c * kh * kw;
  const float* xp = x.data<float>();
  // A half-precision weight is widened once per call (SDXL's largest, 1280·1280·3·3, is 59 MB).
  const float* wp = weight.dtype() == DType::F32 ? weight.data<float>() : nullptr;
  if (!wp) {
    float* wide = weight_scratch(weight.numel());
    widen_to_f32(weight, 0, weight.numel(), wide);
    wp = wide;
  }
  float* yp = y.data<float>();
  const bool pointwise = kh == 1 && kw == 1 && stride == 1 && padding == 0;  // the input is already the matrix
  const int64_t tile_rows = std::clamp<int64_t>(kMaxColumnFloats / std::max<int64_t>(1, k * wo), 1, ho);
  const Tensor col = Tensor::empty({pointwise ? 0 : k * tile_rows * wo});
  for (int64_t b = 0; b < n; ++b) {
    const float* xb = xp + b * c * h * w;
    float* yb = yp + b * o * ho * wo;
    for (int64_t r0 = 0; r0 < ho; r0 += tile_rows) {
      const int64_t rows = std::min(tile_rows, ho - r0), cols = rows * wo;
      const float* bmat = xb + r0 * wo;
      int64_t ldb = ho * wo;
      if (!pointwise) {
#pragma omp parallel for schedule(static)
        for (int64_t kk = 0; kk < k; ++kk) {
          const int64_t ci = kk / (kh * kw), dy = (kk / kw) % kh, dx = kk % kw;
          float* dst = col.data<float>() + kk * cols;
          for (int64_t r = 0; r < rows; ++r) {
            const int64_t iy = (r0 + r) * stride - padding + dy;
            float* d = dst + r * wo;
            if (iy < 0 || iy >= h) {
              std::fill(d, d + wo, 0.0f);
              continue;
            }
            const float* src = xb + (ci * h + iy) * w;
            for (int64_t xo = 0; xo < wo; ++xo) {
              const int64_t ix = xo * stride - padding + dx;
              d[xo] = ix >= 0 && ix < w ? src[ix] : 0.0f;
            }
          }
        }
        bmat = col.data<float>();
        ldb = cols;
      }
      // y[o, rows·wo] = weight[o, k] · col[k, rows·wo]
      gemm(false, false, o, cols, k, 1.0f, wp, k, bmat, ldb, 0.0f, yb + r0 * wo, ho * wo);
    }
    if (bias.defined()) {
      const float* bp = bias.data<float>();
#pragma omp parallel for schedule(static)
      for (int64_t oc = 0; oc < o; ++oc) {
        float* row = yb + oc * ho * wo;
        for (int64_t i = 0; i < ho * wo; ++i) row[i] += bp[oc];
      }
    }
  }
}

void group_norm(const Tensor& x, int64_t groups, const Tensor& weight, const Tensor& bias, float eps, ops::Activation act,
                Tensor& y) {
  const int64_t n = x.dim(0), c = x.dim(1), spatial = x.numel() / (n * c), per = c / groups;
  const float* xp = x.data<float>();
  float* yp = y.data<float>();
  const float* wp = weight.defined() ? weight.data<float>() : nullptr;
  const float* bp = bias.defined() ? bias.data<float>() : nullptr;
#pragma omp parallel for schedule(static)
  for (int64_t ng = 0; ng < n * groups; ++ng) {
    const int64_t b = ng / groups, g = ng % groups;
    const float* src = xp + (b * c + g * per) * spatial;
    const int64_t count = per * spatial;
    double sum = 0, sq = 0;
    for (int64_t i = 0; i < count; ++i) sum += src[i];
    const double mean = sum / count;
    for (int64_t i = 0; i < count; ++i) sq += (src[i] - mean) * (src[i] - mean);
    const float rstd = static_cast<float>(1.0 / std::sqrt(sq / count + eps));
    for (int64_t ci = 0; ci < per; ++ci) {
      const int64_t ch = g * per + ci;
      const float scale = rstd * (wp ? wp[ch] : 1.0f), shift = (bp ? bp[ch] : 0.0f) - static_cast<float>(mean) * scale;
      const float* s = src + ci * spatial;
      float* d = yp + (b * c + ch) * spatial;
      // The activation follows each chunk while it is in L1, not as a second pass over the tensor.
      constexpr int64_t kChunk = 2048;
      for (int64_t i0 = 0; i0 < spatial; i0 += kChunk) {
        const int64_t len = std::min(kChunk, spatial - i0);
        for (int64_t i = i0; i < i0 + len; ++i) d[i] = s[i] * scale + shift;
        if (act != ops::Activation::Identity) activation_span(d + i0, len, act);
      }
    }
  }
}

void upsample_nearest2x(const Tensor& x, Tensor& y) {
  const int64_t planes = x.dim(0) * x.dim(1), h = x.dim(2), w = x.dim(3);
  const float* xp = x.data<float>();
  float* yp = y.data<float>();
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t i = 0; i < 2 * h; ++i) {
      const float* src = xp + (p * h + i / 2) * w;
      float* d = yp + (p * 2 * h + i) * 2 * w;
      for (int64_t j = 0; j < 2 * w; ++j) d[j] = src[j / 2];
    }
}

void pad_bottom_right(const Tensor& x, Tensor& y) {
  const int64_t planes = x.dim(0) * x.dim(1), h = x.dim(2), w = x.dim(3), ho = y.dim(2), wo = y.dim(3);
  const float* xp = x.data<float>();
  float* yp = y.data<float>();
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < planes; ++p) {
    float* dst = yp + p * ho * wo;
    for (int64_t r = 0; r < h; ++r) {
      std::copy_n(xp + (p * h + r) * w, w, dst + r * wo);
      std::fill(dst + r * wo + w, dst + (r + 1) * wo, 0.0f);
    }
    std::fill(dst + h * wo, dst + ho * wo, 0.0f);
  }
}

}  // namespace mmx::cpu
