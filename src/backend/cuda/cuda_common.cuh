// Shared by the CUDA backend's files: error checks, the device's backend (its stream), element types.
#pragma once
#include <cublasLt.h>
#include <algorithm>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "backend/cuda/cuda_backend.cuh"
#include "mmx/error.hpp"
#include "mmx/tensor.hpp"

namespace mmx::cuda {

[[noreturn]] void fail_cuda(cudaError_t status, const char* what, const char* file, int line);
[[noreturn]] void fail_cublas(cublasStatus_t status, const char* what, const char* file, int line);

#define MMX_CUDA_CHECK(call)                                                   \
  do {                                                                         \
    cudaError_t mmx_status_ = (call);                                          \
    if (mmx_status_ != cudaSuccess) ::mmx::cuda::fail_cuda(mmx_status_, #call, __FILE__, __LINE__); \
  } while (0)
#define MMX_CUBLAS_CHECK(call)                                                 \
  do {                                                                         \
    cublasStatus_t mmx_status_ = (call);                                       \
    if (mmx_status_ != CUBLAS_STATUS_SUCCESS) ::mmx::cuda::fail_cublas(mmx_status_, #call, __FILE__, __LINE__); \
  } while (0)
// After a kernel launch: launch errors (bad configuration) surface here, not at a later op.
#define MMX_CUDA_LAUNCH_CHECK() MMX_CUDA_CHECK(cudaGetLastError())

// Element types by dtype; kernels load through to_float and store through from_float, computing in f32.
template <class T> __device__ __forceinline__ float to_float(T v);
template <> __device__ __forceinline__ float to_float<float>(float v) { return v; }
template <> __device__ __forceinline__ float to_float<__half>(__half v) { return __half2float(v); }
template <> __device__ __forceinline__ float to_float<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }
template <class T> __device__ __forceinline__ T from_float(float v);
template <> __device__ __forceinline__ float from_float<float>(float v) { return v; }
template <> __device__ __forceinline__ __half from_float<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

// Calls f.template operator()<T>() with T the element type of `dtype` (F32, F16 or BF16).
template <class F>
void dispatch_float(DType dtype, const char* op, F&& f) {
  switch (dtype) {
    case DType::F32: f.template operator()<float>(); return;
    case DType::F16: f.template operator()<__half>(); return;
    case DType::BF16: f.template operator()<__nv_bfloat16>(); return;
    default: fail(op, ": no CUDA kernel for ", dtype_name(dtype));
  }
}

// Grid-stride kernels: 256 threads a block, at most 2²⁰ blocks (each thread then loops over the rest).
constexpr int kThreads = 256;
inline unsigned grid_for(int64_t n) {
  return static_cast<unsigned>(std::min<int64_t>((n + kThreads - 1) / kThreads, int64_t(1) << 20));
}

// Block-wide sum of one float per thread (blockDim.x a multiple of 32, at most 1024).
__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
__device__ inline float block_sum(float v, float* shared32) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // shared32 may still be read from a previous call
  if (lane == 0) shared32[warp] = v;
  __syncthreads();
  v = lane < warps ? shared32[lane] : 0.f;
  return warp_sum(v);
}
__device__ inline float block_max(float v, float* shared32) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) shared32[warp] = v;
  __syncthreads();
  v = lane < warps ? shared32[lane] : -INFINITY;
  return warp_max(v);
}

// The activations of ops::Activation, in f32 (erf GELU as torch's F.gelu, tanh GELU as gelu_new).
__device__ __forceinline__ float activate(float x, int act) {
  switch (act) {
    case 0: return 0.5f * x * (1.f + erff(x * 0.70710678118654752f));                              // GeluErf
    case 1: return 0.5f * x * (1.f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));     // GeluTanh
    case 2: return x / (1.f + expf(-1.702f * x));                                                  // QuickGelu
    case 3: return fmaxf(x, 0.f);                                                                  // Relu
    case 4: return x / (1.f + expf(-x));                                                           // Silu
    case 5: return tanhf(x);                                                                       // Tanh
    case 6: return 1.f / (1.f + expf(-x));                                                         // Sigmoid
    default: return x;                                                                             // Identity
  }
}

}  // namespace mmx::cuda
