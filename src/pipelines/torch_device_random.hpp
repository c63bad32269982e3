// torch.Generator(device).manual_seed(seed) on a device other than the CPU (torch_device_random.cpp):
// torch.randn computed there as torch computes it, by the device's backend (ops::torch_randn; on CUDA
// curand's Philox4x32-10 and Box–Muller in torch's launch grid and offsets), so `--rng cuda --seed S`
// gives the latents diffusers gets with a CUDA generator. Depends on the device exactly as torch's values
// do (its SM count on CUDA).
#pragma once
#include <cstdint>

#include "mmx/device.hpp"
#include "mmx/tensor.hpp"

namespace mmx {

class TorchDeviceGenerator {
 public:
  TorchDeviceGenerator(uint64_t seed, Device device) : seed_(seed), device_(device) {}
  // `dtype` is the dtype torch draws in (diffusers: the pipeline's, F16 under torch_dtype=float16); the
  // values come back as host F32. An error when the device's backend does not reproduce its generator.
  Tensor randn(const Shape& shape, DType dtype = DType::F32);

 private:
  uint64_t seed_;
  Device device_;
  uint64_t offset_ = 0;  // philox_offset_per_thread
};

}  // namespace mmx
