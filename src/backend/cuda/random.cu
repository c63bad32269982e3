// torch.randn on a CUDA generator, reproduced by running what torch runs: each thread of torch's launch
// grid (256 threads a block, at most maxThreadsPerMultiProcessor / 256 blocks per SM) seeds curand's
// Philox4x32-10 with (seed, subsequence = its index, offset = the generator's), draws curand_normal4
// and writes element idx + k·(threads in the grid) from its k-th value, grid-stride (torch's
// distribution_elementwise_grid_stride_kernel). The same device code on the same GPU gives torch's
// values bit for bit; the grid depends on the GPU's SM count, as torch's does.
#include <curand_kernel.h>

#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/cuda_ops.hpp"

namespace mmx::cuda {

namespace {

template <class T>
__global__ void __launch_bounds__(256) torch_normal_kernel(int64_t numel, uint64_t seed, uint64_t offset, float mean,
                                                           float std, T* out) {
  const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  curandStatePhilox4_32_10_t state;
  curand_init(seed, idx, offset, &state);
  const int64_t threads = int64_t(blockDim.x) * gridDim.x, step = threads * 4;
  const int64_t rounded = ((numel - 1) / step + 1) * step;
  for (int64_t first = idx; first < rounded; first += step) {
    const float4 r = curand_normal4(&state);
    const float values[4] = {r.x, r.y, r.z, r.w};
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const int64_t i = first + threads * k;
      if (i < numel) out[i] = from_float<T>(values[k] * std + mean);  // transformation::normal, in f32
    }
    __syncthreads();
  }
}

}  // namespace

uint64_t torch_randn(uint64_t seed, uint64_t offset, Tensor& out) {
  CudaBackend& cuda = CudaBackend::of(out.device());
  const int64_t numel = out.numel();
  if (numel == 0) return 0;
  if (numel >= (int64_t(1) << 31)) fail("torch_randn: ", numel, " values need torch's split launches, not reproduced");
  int device = 0;
  MMX_CUDA_CHECK(cudaGetDevice(&device));
  cudaDeviceProp prop{};
  MMX_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  const uint32_t block = 256, blocks_per_sm = uint32_t(prop.maxThreadsPerMultiProcessor) / block;
  const uint32_t grid = std::min<uint32_t>(uint32_t(prop.multiProcessorCount) * blocks_per_sm,
                                           static_cast<uint32_t>((numel + block - 1) / block));
  dispatch_float(out.dtype(), "torch_randn", [&]<class T>() {
    torch_normal_kernel<T><<<grid, block, 0, cuda.stream()>>>(numel, seed, offset, 0.f, 1.f, out.ptr<T>());
  });
  MMX_CUDA_LAUNCH_CHECK();
  // calc_execution_policy's counter_offset: curand calls per thread × 4, the generator's advance.
  return ((uint64_t(numel) - 1) / (uint64_t(block) * grid * 4) + 1) * 4;
}

void add_random_ops(OpTable& ops) {
  ops.torch_randn = torch_randn;
}

}  // namespace mmx::cuda
