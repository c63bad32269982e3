// nn.Linear and nn.LayerNorm bound by their state-dict names (".weight", ".bias").
#pragma once
#include "backend/ops.hpp"
#include "models/weights.hpp"

namespace mmx {

struct Linear {
  // [out_features, in_features] as stored; dropped once packed (an f32 weight is packed at load for the
  // backend's GEMM; a half-precision one stays as stored and is widened while packing, per call).
  Tensor weight;
  ops::PackedWeight packed;
  Tensor bias;  // [out_features], or undefined when bias=False
  Linear() = default;
  Linear(const WeightView& w, int64_t in_features, int64_t out_features, bool bias = true)
      : weight(w.get_matrix("weight", {out_features, in_features})),
        bias(bias ? w.get("bias", {out_features}, Init::Zeros) : Tensor()) {
    if (weight.dtype() == DType::F32) {
      packed = ops::pack_linear_weight(weight);
      if (packed.defined()) weight = Tensor();
    }
  }
  Tensor forward(const Tensor& x, const ops::LinearFusion& fusion = {}) const {
    return ops::linear(x, weight, packed, bias, fusion);
  }
};

struct LayerNorm {
  Tensor weight, bias;  // [C]
  float eps = 1e-5f;
  LayerNorm() = default;
  LayerNorm(const WeightView& w, int64_t channels, double eps)
      : weight(w.get("weight", {channels}, Init::Ones)),
        bias(w.get("bias", {channels}, Init::Zeros)),
        eps(static_cast<float>(eps)) {}
  Tensor forward(const Tensor& x) const { return ops::layer_norm(x, weight, bias, eps); }
};

}  // namespace mmx
