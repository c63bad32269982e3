// The layout ops on the CPU: copies and one fused GEGLU, parallel over rows.
#include <cstring>

#include "backend/cpu/cpu_ops.hpp"
#include "core/thread_pool.hpp"

namespace mmx::cpu {

void transpose12(const Tensor& x, Tensor& y) {
  const int64_t n = x.dim(0), a = x.dim(1), b = x.dim(2);
  const float* xp = x.data<float>();
  float* yp = y.data<float>();
  // In 32×32 tiles, so both the reads and the writes stay within a few cache lines.
  constexpr int64_t kTile = 32;
  const int64_t row_tiles = (a + kTile - 1) / kTile;
  parallel_for(n * row_tiles, grain_rows(kTile * b), [&](int64_t first, int64_t end) {
    for (int64_t task = first; task < end; ++task) {
      const int64_t s = task / row_tiles, i0 = task % row_tiles * kTile;
      for (int64_t j0 = 0; j0 < b; j0 += kTile)
        for (int64_t i = i0; i < std::min(a, i0 + kTile); ++i)
          for (int64_t j = j0; j < std::min(b, j0 + kTile); ++j) yp[(s * b + j) * a + i] = xp[(s * a + i) * b + j];
    }
  });
}

void add_channel_bias(Tensor& x, const Tensor& v) {
  const int64_t nc = x.dim(0) * x.dim(1), plane = nc ? x.numel() / nc : 0;
  float* xp = x.data<float>();
  const float* vp = v.data<float>();
  parallel_for(nc, grain_rows(plane), [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i)
      for (int64_t j = 0; j < plane; ++j) xp[i * plane + j] += vp[i];
  });
}

void concat1(const Tensor& a, const Tensor& b, Tensor& y) {
  const int64_t n = b.dim(0), sa = a.numel() / a.dim(0), sb = b.numel() / n;  // elements per sample
  const float *ap = a.data<float>(), *bp = b.data<float>();
  float* yp = y.data<float>();
  for (int64_t i = 0; i < n; ++i) {
    std::memcpy(yp + i * (sa + sb), ap + (a.dim(0) == 1 ? 0 : i * sa), sizeof(float) * sa);
    std::memcpy(yp + i * (sa + sb) + sa, bp + i * sb, sizeof(float) * sb);
  }
}

void geglu(const Tensor& x, Tensor& y) {
  const int64_t inner = y.dim(-1), rows = inner ? y.numel() / inner : 0;
  const float* xp = x.data<float>();
  float* yp = y.data<float>();
  // The gate half is copied and activated in place by the vector GELU, then multiplied in.
  parallel_for(rows, grain_rows(inner), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) std::memcpy(yp + r * inner, xp + (2 * r + 1) * inner, sizeof(float) * inner);
  });
  activation(y, ops::Activation::GeluErf);
  parallel_for(rows, grain_rows(inner), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t i = 0; i < inner; ++i) yp[r * inner + i] *= xp[2 * r * inner + i];
  });
}

void select_tokens(const Tensor& x, const std::vector<int64_t>& positions, Tensor& y) {
  const int64_t t = x.dim(1), c = x.dim(2);
  for (size_t b = 0; b < positions.size(); ++b)
    std::memcpy(y.data<float>() + int64_t(b) * c, x.data<float>() + (int64_t(b) * t + positions[b]) * c, sizeof(float) * c);
}

void patchify(const Tensor& pixels, int64_t ph, int64_t pw, Tensor& y) {
  const int64_t batch = pixels.dim(0), channels = pixels.dim(1), height = pixels.dim(2), width = pixels.dim(3);
  const int64_t nw = width / pw, n = y.dim(1), k = y.dim(2);
  const float* src = pixels.data<float>();
  float* dst = y.data<float>();
  parallel_for(batch * n, grain_rows(k), [&](int64_t first, int64_t end) {
    for (int64_t task = first; task < end; ++task) {
      const int64_t b = task / n, p = task % n, gy = p / nw, gx = p % nw;
      float* out = dst + task * k;
      for (int64_t ch = 0; ch < channels; ++ch)
        for (int64_t r = 0; r < ph; ++r)
          std::memcpy(out + (ch * ph + r) * pw, src + ((b * channels + ch) * height + gy * ph + r) * width + gx * pw,
                      sizeof(float) * pw);
    }
  });
}

void add_layout_ops(OpTable& ops) {
  ops.transpose12 = transpose12;
  ops.add_channel_bias = add_channel_bias;
  ops.concat1 = concat1;
  ops.geglu = geglu;
  ops.select_tokens = select_tokens;
  ops.patchify = patchify;
}

}  // namespace mmx::cpu
