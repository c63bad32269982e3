// Where a model runs (src/core/placement.cpp): the device its weights are uploaded to when it is loaded
// and the precision they are held in. A value passed to every loader (the CLI's --device and --dtype), so
// models with different placements live side by side in one process (a server holding an f32 BERT and
// an f16 CLIP). Models take host F32 inputs and return host F32 outputs whatever the placement; the
// conversions happen at their boundary (in / out).
#pragma once
#include <string>

#include "mmx/device.hpp"
#include "mmx/tensor.hpp"

namespace mmx {

struct Placement {
  Device device;             // the CPU by default
  // F32, F16 or BF16: every weight is rounded to it, as model.to(dtype) does. On the CPU, BF16 also
  // multiplies in bf16 (activations rounded at each linear layer's input, f32 sums), and I8 ("int8")
  // keeps f32 weights but multiplies linear layers in int8: weights quantized per output feature,
  // activations per row, exact int32 sums (gemm_lowp.hpp). Both are choices with a stated quality
  // bound (tests/README.md), never the default.
  DType dtype = DType::F32;

  // The dtype activations are computed in: `dtype` where the device's backend computes in it (CUDA: F32,
  // F16, BF16), else F32 (the CPU keeps F16/BF16 weights as such and widens them as its GEMM packs them).
  DType activation_dtype() const;
  Tensor in(const Tensor& t) const;   // a caller's tensor on the device, floats in activation_dtype()
  Tensor out(const Tensor& t) const;  // a model's result as F32 in host memory
  // The dtype weights are kept in: `dtype`, except I8, whose weights stay F32 until a layer packs them.
  DType weight_dtype() const { return dtype == DType::I8 ? DType::F32 : dtype; }
  // Fails when the dtype is not F32, F16 or BF16 (or I8 on the CPU), or the device cannot be used.
  void check() const;
  std::string str() const;  // "cpu f32", "cuda:0 f16", "cpu int8"
  friend bool operator==(const Placement& a, const Placement& b) { return a.device == b.device && a.dtype == b.dtype; }
};

// "f32" | "f16" | "bf16" | "int8" (also "float32", "float16", "bfloat16", "fp16", "half", "i8", "q8"); anything
// else is a usage error.
DType dtype_from_name(const std::string& name);

}  // namespace mmx
