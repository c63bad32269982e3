// nn.Conv2d, nn.GroupNorm and diffusers' ResnetBlock2D (without a time embedding: the VAE's), bound by
// their state-dict names.
#pragma once
#include "backend/ops.hpp"
#include "models/weights.hpp"

namespace mmx {

struct Conv2d {
  Tensor weight, bias;  // [out, in, k, k], [out]
  int64_t stride = 1, padding = 0;
  Conv2d() = default;
  Conv2d(const WeightView& w, int64_t in, int64_t out, int64_t kernel, int64_t stride = 1, int64_t padding = 0)
      : weight(w.get("weight", {out, in, kernel, kernel})), bias(w.get("bias", {out}, Init::Zeros)), stride(stride),
        padding(padding) {}
  Tensor forward(const Tensor& x) const { return ops::conv2d(x, weight, bias, stride, padding); }
};

struct GroupNorm {
  Tensor weight, bias;  // [C]
  int64_t groups = 32;
  float eps = 1e-6f;
  GroupNorm() = default;
  GroupNorm(const WeightView& w, int64_t groups, int64_t channels, double eps)
      : weight(w.get("weight", {channels}, Init::Ones)), bias(w.get("bias", {channels}, Init::Zeros)), groups(groups),
        eps(static_cast<float>(eps)) {}
  Tensor forward(const Tensor& x) const { return ops::group_norm(x, groups, weight, bias, eps); }
};

// x + conv2(act(norm2(conv1(act(norm1(x)))))), the shortcut a 1×1 convolution when channels change.
struct ResnetBlock2D {
  GroupNorm norm1, norm2;
  Conv2d conv1, conv2, conv_shortcut;
  bool has_shortcut = false;
  ops::Activation act = ops::Activation::Silu;
  ResnetBlock2D() = default;
  ResnetBlock2D(const WeightView& w, int64_t in, int64_t out, int64_t groups, double eps, ops::Activation act)
      : norm1(w.sub("norm1"), groups, in, eps), norm2(w.sub("norm2"), groups, out, eps),
        conv1(w.sub("conv1"), in, out, 3, 1, 1), conv2(w.sub("conv2"), out, out, 3, 1, 1), has_shortcut(in != out),
        act(act) {
    if (has_shortcut) conv_shortcut = Conv2d(w.sub("conv_shortcut"), in, out, 1);
  }
  Tensor forward(const Tensor& x) const {
    Tensor h = norm1.forward(x);
    ops::activation_(h, act);
    h = conv1.forward(h);
    h = norm2.forward(h);
    ops::activation_(h, act);
    h = conv2.forward(h);
    ops::add_(h, has_shortcut ? conv_shortcut.forward(x) : x);
    return h;
  }
};

}  // namespace mmx
