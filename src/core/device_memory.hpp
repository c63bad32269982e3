// What core needs from a GPU backend to keep tensors in GPU memory. The CUDA backend implements it
// (backend/cuda/cuda_memory.cu); a build without CUDA links core/no_cuda.cpp, which has none.
#pragma once
#include <cstddef>

#include "mmx/tensor.hpp"

namespace mmx::device {

struct Memory {
  void* (*allocate)(size_t bytes);  // fails (throws) when the device is out of memory
  void (*release)(void* p, size_t bytes);
  // Copies between host and device memory, or within either; returns when the copy is done.
  void (*copy)(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes);
  void (*zero)(void* p, size_t bytes);
  // Converts n elements between F32, F16 and BF16 in device memory.
  void (*convert)(const void* src, DType from, void* dst, DType to, size_t n);
  void (*synchronize)();          // waits for every queued op
  size_t (*peak_bytes)();         // the most memory tensors have held at once
  void (*reset_peak)();
  const char* (*device_label)();  // e.g. "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs)"
  // torch.randn on a CUDA generator at (seed, offset) into a device tensor; returns the offset's advance.
  uint64_t (*torch_randn)(uint64_t seed, uint64_t offset, Tensor& out);
};

// The CUDA backend's memory functions, or nullptr when this build has no CUDA backend.
const Memory* cuda_memory();
// Whether a CUDA device can be used (false in builds without CUDA and on machines without a GPU).
bool cuda_device_present();

}  // namespace mmx::device
