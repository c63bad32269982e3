// nn.Conv2d, nn.GroupNorm and diffusers' ResnetBlock2D (with the UNet's time embedding, or without it
// as in the VAE), bound by their state-dict names.
#pragma once
#include <optional>

#include "backend/ops.hpp"
#include "models/blocks/linear.hpp"
#include "models/weights.hpp"

namespace mmx {

struct Conv2d {
  Tensor weight, bias;  // [out, in, k, k], [out]
  int64_t stride = 1, padding = 0;
  // BF16 at the CPU's --dtype bf16 (int8 is for linear layers only): the weight then stays as the file
  // holds it and each call rounds it to bf16 as it lays it out (no rounded copy of every weight at load).
  DType compute = DType::F32;
  Conv2d() = default;
  Conv2d(const WeightView& w, int64_t in, int64_t out, int64_t kernel, int64_t stride = 1, int64_t padding = 0)
      : bias(w.get("bias", {out}, Init::Zeros)), stride(stride), padding(padding),
        compute(w.placement().device.is_cpu() && w.placement().dtype == DType::BF16 ? DType::BF16 : DType::F32) {
    weight = compute == DType::BF16 ? w.get_matrix_to_pack("weight", {out, in, kernel, kernel})
                                    : w.get_matrix("weight", {out, in, kernel, kernel});
  }
  Tensor forward(const Tensor& x) const { return ops::conv2d(x, weight, bias, stride, padding, compute); }
};

// diffusers' Downsample2D with a convolution: 3×3, stride 2. Padding 0 means F.pad(x, (0, 1, 0, 1))
// first (the VAE encoder's layout); otherwise the convolution pads symmetrically (the UNet's 1).
struct Downsample2D {
  Conv2d conv;
  Downsample2D() = default;
  Downsample2D(const WeightView& w, int64_t channels, int64_t out, int64_t padding)
      : conv(w.sub("conv"), channels, out, 3, 2, padding) {}
  Tensor forward(const Tensor& x) const {
    return conv.forward(conv.padding == 0 ? ops::pad_bottom_right(x, 1) : x);
  }
};

struct GroupNorm {
  Tensor weight, bias;  // [C]
  int64_t groups = 32;
  float eps = 1e-6f;
  GroupNorm() = default;
  GroupNorm(const WeightView& w, int64_t groups, int64_t channels, double eps)
      : weight(w.get("weight", {channels}, Init::Ones)), bias(w.get("bias", {channels}, Init::Zeros)), groups(groups),
        eps(static_cast<float>(eps)) {}
  Tensor forward(const Tensor& x, ops::Activation act = ops::Activation::Identity) const {
    return ops::group_norm(x, groups, weight, bias, eps, act);
  }
};

// x + conv2(act(norm2(conv1(act(norm1(x))) + time_emb_proj(act(temb))))), the shortcut a 1×1
// convolution when channels change ("default" time_embedding_norm, output_scale_factor 1).
struct ResnetBlock2D {
  GroupNorm norm1, norm2;
  Conv2d conv1, conv2;
  std::optional<Conv2d> conv_shortcut;
  std::optional<Linear> time_emb_proj;
  ops::Activation act = ops::Activation::Silu;
  ResnetBlock2D() = default;
  // temb_channels 0: no time embedding (the VAE).
  ResnetBlock2D(const WeightView& w, int64_t in, int64_t out, int64_t groups, double eps, ops::Activation act,
                int64_t temb_channels = 0)
      : norm1(w.sub("norm1"), groups, in, eps), norm2(w.sub("norm2"), groups, out, eps),
        conv1(w.sub("conv1"), in, out, 3, 1, 1), conv2(w.sub("conv2"), out, out, 3, 1, 1), act(act) {
    if (temb_channels > 0) time_emb_proj.emplace(w.sub("time_emb_proj"), temb_channels, out);
    if (in != out) conv_shortcut.emplace(w.sub("conv_shortcut"), in, out, 1);
  }
  // x [N, C, H, W]; temb [N, temb_channels] (undefined without a time embedding).
  Tensor forward(const Tensor& x, const Tensor& temb = Tensor()) const {
    Tensor h = conv1.forward(norm1.forward(x, act));  // norm + activation in one pass
    if (time_emb_proj) {
      Tensor t = temb.clone();
      ops::activation_(t, act);
      ops::add_channel_bias_(h, time_emb_proj->forward(t));  // h + temb[:, :, None, None]
    }
    h = conv2.forward(norm2.forward(h, act));
    ops::add_(h, conv_shortcut ? conv_shortcut->forward(x) : x);
    return h;
  }

};

}  // namespace mmx
