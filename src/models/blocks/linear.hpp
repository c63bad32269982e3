// nn.Linear and nn.LayerNorm bound by their state-dict names (".weight", ".bias").
#pragma once
#include <memory>
#include <mutex>

#include "backend/ops.hpp"
#include "models/weights.hpp"

namespace mmx {

struct Linear {
  // [out_features, in_features] as stored (an mmap'd file region where it is f32; at the CPU's bf16/int8,
  // as the file holds it whatever its dtype, and read only by the first use's packing)
  Tensor weight;
  Tensor bias;    // [out_features], or undefined when bias=False
  Linear() = default;
  Linear(const WeightView& w, int64_t in_features, int64_t out_features, bool bias = true)
      : bias(bias ? w.get("bias", {out_features}, Init::Zeros) : Tensor()) {
    // The CPU at --dtype bf16 | int8 multiplies in that precision: the weight stays as the file holds it
    // until its first use packs it into bf16 / int8 panels (rounded or quantized there).
    const DType compute = low_precision_compute(w.placement());
    weight = compute != DType::F32 ? w.get_matrix_to_pack("weight", {out_features, in_features})
                                   : w.get_matrix("weight", {out_features, in_features});
    if (weight.dtype() == DType::F32 || compute != DType::F32) packing_ = std::make_shared<Packing>(compute);
  }
  // BF16 or I8 where the placement multiplies linear layers in that precision (the CPU), else F32.
  static DType low_precision_compute(const Placement& p) {
    return p.device.is_cpu() && (p.dtype == DType::BF16 || p.dtype == DType::I8) ? p.dtype : DType::F32;
  }
  Tensor forward(const Tensor& x, const ops::LinearFusion& fusion = {}) const {
    return ops::linear(x, weight, packed(), bias, fusion);
  }
  // An f32 weight re-laid out for the backend's GEMM on its first use, not at load: a model whose one
  // tower is used (a CLIP text query) packs only that tower (a half-precision weight stays as stored and
  // is widened while packing, per call).
  const ops::PackedWeight& packed() const {
    static const ops::PackedWeight kNone;
    if (!packing_) return kNone;
    std::call_once(packing_->once, [&] { packing_->packed = ops::pack_linear_weight(weight, packing_->compute); });
    return packing_->packed;
  }

 private:
  struct Packing {
    explicit Packing(DType c) : compute(c) {}
    DType compute;  // F32, or the CPU's BF16 / I8 products
    std::once_flag once;
    ops::PackedWeight packed;
  };
  std::shared_ptr<Packing> packing_;  // shared by copies, so a copy never packs twice
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
