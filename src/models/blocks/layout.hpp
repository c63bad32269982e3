// Moving between the image layout of convolutions [N, C, H, W] and the token layout of attention and
// linear layers [N, H·W, C].
#pragma once
#include "mmx/tensor.hpp"

namespace mmx {

// x.permute(0, 2, 3, 1).reshape(N, H·W, C)
inline Tensor channels_to_tokens(const Tensor& x) {
  const int64_t n = x.dim(0), c = x.dim(1), s = x.dim(2) * x.dim(3);
  Tensor y = Tensor::empty({n, s, c});
  const float* xp = x.data<float>();
  float* yp = y.data<float>();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n * c; ++i)
    for (int64_t j = 0; j < s; ++j) yp[((i / c) * s + j) * c + i % c] = xp[i * s + j];
  return y;
}

// t.reshape(N, H, W, C).permute(0, 3, 1, 2)
inline Tensor tokens_to_channels(const Tensor& t, int64_t h, int64_t w) {
  const int64_t n = t.dim(0), s = t.dim(1), c = t.dim(2);
  Tensor y = Tensor::empty({n, c, h, w});
  const float* tp = t.data<float>();
  float* yp = y.data<float>();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n * c; ++i)
    for (int64_t j = 0; j < s; ++j) yp[i * s + j] = tp[((i / c) * s + j) * c + i % c];
  return y;
}

}  // namespace mmx
