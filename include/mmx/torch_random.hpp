// torch.randn on a CPU torch.Generator, value for value: the same Mersenne Twister, and both of torch
// 1.13's normal samplers (double Box–Muller below 16 values; above, its AVX2 kernel's float Box–Muller
// over blocks of 16 with the cephes log and sincos it vectorises, recomputing the last 16 values when the
// size is not a multiple of 16). `--seed S` therefore gives the latents diffusers gets from
// generator=torch.Generator().manual_seed(S) (src/core/torch_random.cpp; a device's own generator, such as
// torch.Generator("cuda"), is drawn by that device's backend: pipelines/torch_device_random.hpp).
#pragma once
#include <cstdint>
#include <optional>
#include <random>

#include "mmx/tensor.hpp"

namespace mmx {

class TorchGenerator {
 public:
  explicit TorchGenerator(uint64_t seed) : engine_(static_cast<uint32_t>(seed)) {}  // manual_seed(seed)
  // torch.randn(shape, generator=this): F32, contiguous.
  Tensor randn(const Shape& shape);

 private:
  float uniform_float();    // 24 random bits / 2^24
  double uniform_double();  // 53 of two draws (high word first) / 2^53
  std::mt19937 engine_;
  std::optional<double> next_normal_;  // Box–Muller's second value, kept for the next call
};

}  // namespace mmx
