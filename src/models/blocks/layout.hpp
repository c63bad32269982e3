// Moving between the image layout of convolutions [N, C, H, W] and the token layout of attention and
// linear layers [N, H·W, C].
#pragma once
#include "backend/ops.hpp"

namespace mmx {

// x.permute(0, 2, 3, 1).reshape(N, H·W, C)
inline Tensor channels_to_tokens(const Tensor& x) {
  return ops::transpose12(x.reshape({x.dim(0), x.dim(1), x.dim(2) * x.dim(3)}));
}

// t.reshape(N, H, W, C).permute(0, 3, 1, 2)
inline Tensor tokens_to_channels(const Tensor& t, int64_t h, int64_t w) {
  return ops::transpose12(t).reshape({t.dim(0), t.dim(2), h, w});
}

}  // namespace mmx
