// Image ops for the diffusion models: 2-D convolution (the packed GEMM reading the image's columns
// straight into its panels, a bounded tile at a time; im2col + dnnl_sgemm without AVX2), group
// normalisation (+ activation), nearest 2× upsampling. NCHW, F32 activations; F32, F16 or BF16 weights.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "backend/cpu/cpu_ops.hpp"
#include "backend/cpu/gemm_lowp.hpp"
#include "backend/cpu/gemm_packed.hpp"
#include "core/half.hpp"
#include "core/thread_pool.hpp"

namespace mmx::cpu {

namespace {
// The im2col buffer holds at most this many floats (32 MiB), so a 1024² SDXL VAE layer never needs
// the whole [C·k·k, H·W] matrix at once.
constexpr int64_t kMaxColumnFloats = int64_t(8) << 20;
// A packed convolution weight of at most this many floats (4 MiB: the VAE's 128- and 256-channel
// 3×3 layers, the UNet's 320-channel ones) is read from cache for every panel of image columns, so the
// panels are made one at a time per thread instead of a tile at a time in memory.
constexpr int64_t kFusedPanelWeightFloats = int64_t(1) << 20;
}  // namespace

namespace {

// Columns [px0, px0 + ncols) of the image's im2col matrix, written straight into one kernel panel
// ([k][nr], zero past ncols): for each k = (channel, dy, dx) the panel's pixels are a few runs along
// output rows, and with stride 1 each run is one contiguous stretch of an input row.
// Rows [k0, k0 + kc) of the panel only (dst[0] is row k0). Only the packed kernels call it, so it may
// use AVX2 (32-float copies in four moves).
__attribute__((target("avx2"))) void pack_conv_panel(const float* xb, int64_t h, int64_t w, int64_t wo, int64_t kh, int64_t kw, int64_t stride,
                     int64_t padding, int64_t k0, int64_t kc, int64_t px0, int ncols, int nr, float* dst) {
  struct Run { int64_t oy, ox; int col, len; };
  Run runs[64];
  int run_count = 0;
  for (int col = 0; col < ncols;) {
    const int64_t px = px0 + col, oy = px / wo, ox = px % wo;
    const int len = static_cast<int>(std::min<int64_t>(ncols - col, wo - ox));
    runs[run_count++] = {oy, ox, col, len};
    col += len;
  }
  // k = (ci·kh + dy)·kw + dx, counted up from k0 without a division per step.
  int64_t ci = k0 / (kh * kw), dy = (k0 / kw) % kh, dx = k0 % kw;
  float* d = dst;
  for (int64_t kk = 0; kk < kc; ++kk, d += nr) {
    if (kk > 0 && ++dx == kw) {
      dx = 0;
      if (++dy == kh) {
        dy = 0;
        ++ci;
      }
    }
    for (int ri = 0; ri < run_count; ++ri) {
      const Run& run = runs[ri];
      float* out = d + run.col;
      const int64_t iy = run.oy * stride - padding + dy;
      if (iy < 0 || iy >= h) {
        std::fill(out, out + run.len, 0.f);
        continue;
      }
      const float* src = xb + (ci * h + iy) * w;
      const int64_t ix0 = run.ox * stride - padding + dx;
      if (stride == 1) {  // inputs ix0 … ix0 + len − 1: zeros outside [0, w), one copy inside
        const int lo = static_cast<int>(std::clamp<int64_t>(-ix0, 0, run.len));
        const int hi = static_cast<int>(std::clamp<int64_t>(w - ix0, lo, run.len));
        if (lo == 0 && hi == run.len && (run.len == 32 || run.len == 16)) {  // the common case, inlined
          if (run.len == 32) std::memcpy(out, src + ix0, 32 * sizeof(float));
          else std::memcpy(out, src + ix0, 16 * sizeof(float));
          continue;
        }
        for (int t = 0; t < lo; ++t) out[t] = 0.f;
        for (int t = lo; t < hi; ++t) out[t] = src[ix0 + t];
        for (int t = hi; t < run.len; ++t) out[t] = 0.f;
      } else {
        for (int t = 0; t < run.len; ++t) {
          const int64_t ix = ix0 + t * stride;
          out[t] = ix >= 0 && ix < w ? src[ix] : 0.f;
        }
      }
    }
    std::fill(d + ncols, d + nr, 0.f);
  }
}

// One tile of conv panels, filled by all threads, owned by the calling one.
float* conv_panel_scratch(int64_t floats) {
  thread_local ScratchBuffer buffer;
  return buffer.get(floats, "a convolution tile");
}

// y[o, pixels] = W[o, C·kh·kw] · im2col: the packed GEMM with W as the row operand and the image's
// columns packed straight into the kernel's panels, a tile of at most kMaxColumnFloats at a time.
void conv2d_packed(const GemmKernel& kernel, const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride,
                   int64_t padding, Tensor& y) {
  const int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), w = x.dim(3), kh = weight.dim(2), kw = weight.dim(3);
  const int64_t o = y.dim(1), ho = y.dim(2), wo = y.dim(3), k = c * kh * kw, pixels = ho * wo;
  const int nr = kernel.nr;
  // The weight is packed (and widened from f16/bf16) once per call, for every image and tile.
  float* packed_weight = weight_scratch(o * k);
  pack_row_operand(weight.reshape({o, k}), kernel.mr, packed_weight);
  const int64_t tile = std::min(std::max<int64_t>(1, kMaxColumnFloats / (k * nr)) * nr, (pixels + nr - 1) / nr * nr);
  float* panels = conv_panel_scratch(tile * k);
  GemmEpilogue epilogue;
  epilogue.row_bias = bias.defined() ? bias.data<float>() : nullptr;
  if (o * k <= kFusedPanelWeightFloats) {
    // A small packed weight stays in cache while each thread fills one panel of image columns and
    // runs every output channel over it: the panels never travel through memory.
    for (int64_t b = 0; b < n; ++b) {
      const float* xb = x.data<float>() + b * c * h * w;
      gemm_packed_fill_columns(
          kernel, o, pixels, k, packed_weight,
          [&](int64_t j, int64_t p0, int64_t kc, float* dst) {
            pack_conv_panel(xb, h, w, wo, kh, kw, stride, padding, p0, kc, j * nr,
                            static_cast<int>(std::min<int64_t>(nr, pixels - j * nr)), nr, dst);
          },
          y.data<float>() + b * o * pixels, pixels, epilogue);
    }
    return;
  }
  for (int64_t b = 0; b < n; ++b) {
    const float* xb = x.data<float>() + b * c * h * w;
    float* yb = y.data<float>() + b * o * pixels;
    for (int64_t px0 = 0; px0 < pixels; px0 += tile) {
      const int64_t count = std::min(tile, pixels - px0), panel_count = (count + nr - 1) / nr;
      parallel_for(panel_count, 1, [&](int64_t j0, int64_t j1) {
        for (int64_t j = j0; j < j1; ++j)
          pack_conv_panel(xb, h, w, wo, kh, kw, stride, padding, 0, k, px0 + j * nr,
                          static_cast<int>(std::min<int64_t>(nr, count - j * nr)), nr, panels + j * k * nr);
      });
      gemm_packed(kernel, o, count, k, nullptr, k, panels, yb + px0, pixels, epilogue, packed_weight);
    }
  }
}

// The same product on a bf16 unit (--dtype bf16): the weight's rows rounded to bf16 once per call, the
// image columns made as f32 panels (pack_conv_panel) and rounded into the bf16 panels the low-precision
// kernels read, a tile of columns at a time; f32 sums, the bias added on the way out.
void conv2d_bf16(const LowpKernel& kernel, const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride,
                 int64_t padding, Tensor& y) {
  const int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), w = x.dim(3), kh = weight.dim(2), kw = weight.dim(3);
  const int64_t o = y.dim(1), wo = y.dim(3), k = c * kh * kw, pixels = y.dim(2) * wo;
  const int64_t kp = lowp_k_padded(LowpType::BF16, k);
  thread_local ScratchBuffer rows_buffer, panels_buffer;
  auto* rows = reinterpret_cast<uint16_t*>(rows_buffer.get(lowp_rows_bytes(LowpType::BF16, o, kp) / 4, "bf16 convolution weight"));
  if (weight.dtype() == DType::F32) {
    convert_rows_bf16(weight.data<float>(), k, o, k, kp, rows);
  } else {
    float* wide = weight_scratch(o * k);
    widen_to_f32(weight, 0, o * k, wide);
    convert_rows_bf16(wide, k, o, k, kp, rows);
  }
  std::fill(rows + o * kp, rows + (o + 31) / 32 * 32 * kp, uint16_t(0));
  const int64_t tile = std::min(std::max<int64_t>(1, kMaxColumnFloats / (kp * kLowpNr)) * kLowpNr,
                                (pixels + kLowpNr - 1) / kLowpNr * kLowpNr);
  auto* panels = reinterpret_cast<uint16_t*>(panels_buffer.get(tile * kp / 2, "bf16 convolution columns"));
  GemmEpilogue epilogue;
  epilogue.row_bias = bias.defined() ? bias.data<float>() : nullptr;
  for (int64_t b = 0; b < n; ++b) {
    const float* xb = x.data<float>() + b * c * h * w;
    float* yb = y.data<float>() + b * o * pixels;
    for (int64_t px0 = 0; px0 < pixels; px0 += tile) {
      const int64_t count = std::min(tile, pixels - px0), panel_count = (count + kLowpNr - 1) / kLowpNr;
      parallel_for(panel_count, 1, [&](int64_t j0, int64_t j1) {
        thread_local ScratchBuffer column_buffer;
        float* column = column_buffer.get(kp * kLowpNr, "a convolution panel");  // [kp][32] f32
        for (int64_t j = j0; j < j1; ++j) {
          pack_conv_panel(xb, h, w, wo, kh, kw, stride, padding, 0, k, px0 + j * kLowpNr,
                          static_cast<int>(std::min<int64_t>(kLowpNr, count - j * kLowpNr)), kLowpNr, column);
          std::fill(column + k * kLowpNr, column + kp * kLowpNr, 0.f);
          // [kp][32] f32 → [kp/2][32][2] bf16: each feature's pair of consecutive K values side by side.
          uint16_t* dst = panels + j * kp * kLowpNr;
          for (int64_t g = 0; g < kp / 2; ++g) {
            alignas(64) float pairs[2 * kLowpNr];
            for (int col = 0; col < kLowpNr; ++col) {
              pairs[2 * col] = column[(2 * g) * kLowpNr + col];
              pairs[2 * col + 1] = column[(2 * g + 1) * kLowpNr + col];
            }
            f32_to_bf16(pairs, dst + g * 2 * kLowpNr, 2 * kLowpNr);
          }
        }
      });
      LowpWeight columns;
      columns.type = LowpType::BF16;
      columns.n = count;
      columns.k = k;
      columns.k_padded = kp;
      columns.panels = panels;
      gemm_lowp_rows(kernel, o, rows, nullptr, columns, yb + px0, pixels, epilogue);
    }
  }
}

}  // namespace

void conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride, int64_t padding, DType compute,
            Tensor& y) {
  const int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), w = x.dim(3);
  const int64_t o = weight.dim(0), kh = weight.dim(2), kw = weight.dim(3);
  const int64_t ho = y.dim(2), wo = y.dim(3), k = c * kh * kw;
  if (compute == DType::BF16) {
    if (const LowpKernel* kernel = lowp_kernel(LowpType::BF16))
      return conv2d_bf16(*kernel, x, weight, bias, stride, padding, y);
    // No bf16 unit: the bf16-rounded weight in f32 (as the linear layers' fall-back).
    if (weight.dtype() != DType::BF16) return conv2d(x, weight.to(DType::BF16), bias, stride, padding, DType::F32, y);
  }
  if (const GemmKernel* kernel = gemm_kernel()) return conv2d_packed(*kernel, x, weight, bias, stride, padding, y);
  // Without the packed kernels: im2col in row tiles + dnnl_sgemm.
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
        parallel_for(k, 1, [&](int64_t kk0, int64_t kk1) {
          for (int64_t kk = kk0; kk < kk1; ++kk) {
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
        });
        bmat = col.data<float>();
        ldb = cols;
      }
      // y[o, rows·wo] = weight[o, k] · col[k, rows·wo]
      gemm(false, false, o, cols, k, 1.0f, wp, k, bmat, ldb, 0.0f, yb + r0 * wo, ho * wo);
    }
    if (bias.defined()) {
      const float* bp = bias.data<float>();
      parallel_for(o, 1, [&](int64_t oc0, int64_t oc1) {
        for (int64_t oc = oc0; oc < oc1; ++oc) {
          float* row = yb + oc * ho * wo;
          for (int64_t i = 0; i < ho * wo; ++i) row[i] += bp[oc];
        }
      });
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
  parallel_for(n * groups, 1, [&](int64_t ng0, int64_t ng1) {
    for (int64_t ng = ng0; ng < ng1; ++ng) {
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
  });
}

void upsample_nearest2x(const Tensor& x, Tensor& y) {
  const int64_t planes = x.dim(0) * x.dim(1), h = x.dim(2), w = x.dim(3);
  const float* xp = x.data<float>();
  float* yp = y.data<float>();
  parallel_for(planes, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p)
      for (int64_t i = 0; i < 2 * h; ++i) {
        const float* src = xp + (p * h + i / 2) * w;
        float* d = yp + (p * 2 * h + i) * 2 * w;
        for (int64_t j = 0; j < 2 * w; ++j) d[j] = src[j / 2];
      }
  });
}

void pad_bottom_right(const Tensor& x, Tensor& y) {
  const int64_t planes = x.dim(0) * x.dim(1), h = x.dim(2), w = x.dim(3), ho = y.dim(2), wo = y.dim(3);
  const float* xp = x.data<float>();
  float* yp = y.data<float>();
  parallel_for(planes, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      float* dst = yp + p * ho * wo;
      for (int64_t r = 0; r < h; ++r) {
        std::copy_n(xp + (p * h + r) * w, w, dst + r * wo);
        std::fill(dst + r * wo + w, dst + (r + 1) * wo, 0.0f);
      }
      std::fill(dst + h * wo, dst + ho * wo, 0.0f);
    }
  });
}

void add_conv_ops(OpTable& ops) {
  ops.conv2d = conv2d;
  ops.group_norm = group_norm;
  ops.upsample_nearest2x = upsample_nearest2x;
  ops.pad_bottom_right = pad_bottom_right;
}

}  // namespace mmx::cpu
