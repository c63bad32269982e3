// The layout ops on CUDA: a tiled transpose through shared memory, and grid-stride copies.
#include <vector>

#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/cuda_ops.hpp"

namespace mmx::cuda {

namespace {


// 32×32 tiles staged in shared memory so that both the reads and the writes are coalesced.
template <class T>
__global__ void transpose_kernel(const T* x, T* y, int64_t a, int64_t b) {
  __shared__ T tile[32][33];
  const int64_t s = blockIdx.z;
  const int64_t i0 = int64_t(blockIdx.y) * 32, j0 = int64_t(blockIdx.x) * 32;
  for (int r = threadIdx.y; r < 32; r += blockDim.y) {
    const int64_t i = i0 + r, j = j0 + threadIdx.x;
    if (i < a && j < b) tile[r][threadIdx.x] = x[(s * a + i) * b + j];
  }
  __syncthreads();
  for (int r = threadIdx.y; r < 32; r += blockDim.y) {
    const int64_t j = j0 + r, i = i0 + threadIdx.x;
    if (i < a && j < b) y[(s * b + j) * a + i] = tile[threadIdx.x][r];
  }
}

template <class T>
__global__ void channel_bias_kernel(T* x, const T* v, int64_t n, int64_t plane) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    x[i] = from_float<T>(to_float(x[i]) + to_float(v[i / plane]));
}

template <class T>
__global__ void concat_kernel(const T* a, const T* b, T* y, int64_t n, int64_t sa, int64_t sb, bool broadcast_a) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t sample = i / (sa + sb), o = i % (sa + sb);
    y[i] = o < sa ? a[(broadcast_a ? 0 : sample * sa) + o] : b[sample * sb + o - sa];
  }
}

template <class T>
__global__ void geglu_kernel(const T* x, T* y, int64_t n, int64_t inner) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / inner, c = i % inner;
    y[i] = from_float<T>(to_float(x[2 * r * inner + c]) * activate(to_float(x[(2 * r + 1) * inner + c]), 0));
  }
}

template <class T>
__global__ void select_kernel(const T* x, const int64_t* positions, T* y, int64_t n, int64_t t, int64_t c) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t b = i / c;
    y[i] = x[(b * t + positions[b]) * c + i % c];
  }
}

template <class T>
__global__ void patchify_kernel(const T* src, T* dst, int64_t n, int64_t channels, int64_t height, int64_t width,
                                int64_t ph, int64_t pw, int64_t patches) {
  const int64_t k = channels * ph * pw, nw = width / pw;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t f = i % k, p = (i / k) % patches, b = i / (k * patches);
    const int64_t ch = f / (ph * pw), r = (f / pw) % ph, q = f % pw;
    dst[i] = src[((b * channels + ch) * height + (p / nw) * ph + r) * width + (p % nw) * pw + q];
  }
}

}  // namespace

void transpose12(const Tensor& x, Tensor& y) {
  CudaBackend& cuda = CudaBackend::of(y.device());
  const int64_t n = x.dim(0), a = x.dim(1), b = x.dim(2);
  if (x.numel() == 0) return;
  if (n > 65535 || (a + 31) / 32 > 65535) fail("transpose12: ", shape_str(x.shape()), " exceeds the grid");
  const dim3 grid(static_cast<unsigned>((b + 31) / 32), static_cast<unsigned>((a + 31) / 32), static_cast<unsigned>(n));
  dispatch_float(x.dtype(), "transpose12", [&]<class T>() {
    transpose_kernel<T><<<grid, dim3(32, 8), 0, cuda.stream()>>>(x.ptr<T>(), y.ptr<T>(), a, b);
  });
  MMX_CUDA_LAUNCH_CHECK();
}

void add_channel_bias(Tensor& x, const Tensor& v) {
  CudaBackend& cuda = CudaBackend::of(x.device());
  if (x.numel() == 0) return;
  const int64_t plane = x.numel() / (x.dim(0) * x.dim(1));
  dispatch_float(x.dtype(), "add_channel_bias", [&]<class T>() {
    channel_bias_kernel<T><<<grid_for(x.numel()), kThreads, 0, cuda.stream()>>>(x.ptr<T>(), v.ptr<T>(), x.numel(), plane);
  });
  MMX_CUDA_LAUNCH_CHECK();
}

void concat1(const Tensor& a, const Tensor& b, Tensor& y) {
  CudaBackend& cuda = CudaBackend::of(y.device());
  if (y.numel() == 0) return;
  const int64_t sa = a.numel() / a.dim(0), sb = b.numel() / b.dim(0);
  dispatch_float(y.dtype(), "concat", [&]<class T>() {
    concat_kernel<T><<<grid_for(y.numel()), kThreads, 0, cuda.stream()>>>(a.ptr<T>(), b.ptr<T>(), y.ptr<T>(), y.numel(), sa,
                                                                     sb, a.dim(0) == 1 && b.dim(0) != 1);
  });
  MMX_CUDA_LAUNCH_CHECK();
}

void geglu(const Tensor& x, Tensor& y) {
  CudaBackend& cuda = CudaBackend::of(y.device());
  if (y.numel() == 0) return;
  dispatch_float(y.dtype(), "geglu", [&]<class T>() {
    geglu_kernel<T><<<grid_for(y.numel()), kThreads, 0, cuda.stream()>>>(x.ptr<T>(), y.ptr<T>(), y.numel(), y.dim(-1));
  });
  MMX_CUDA_LAUNCH_CHECK();
}

void select_tokens(const Tensor& x, const std::vector<int64_t>& positions, Tensor& y) {
  CudaBackend& cuda = CudaBackend::of(y.device());
  if (y.numel() == 0) return;
  const Tensor device_positions =
      Tensor::from_vector(positions, {static_cast<int64_t>(positions.size())}).to(y.device());
  dispatch_float(y.dtype(), "select_tokens", [&]<class T>() {
    select_kernel<T><<<grid_for(y.numel()), kThreads, 0, cuda.stream()>>>(x.ptr<T>(), device_positions.ptr<int64_t>(),
                                                                     y.ptr<T>(), y.numel(), x.dim(1), x.dim(2));
  });
  MMX_CUDA_LAUNCH_CHECK();
}

void patchify(const Tensor& pixels, int64_t ph, int64_t pw, Tensor& y) {
  CudaBackend& cuda = CudaBackend::of(y.device());
  if (y.numel() == 0) return;
  dispatch_float(y.dtype(), "patchify", [&]<class T>() {
    patchify_kernel<T><<<grid_for(y.numel()), kThreads, 0, cuda.stream()>>>(pixels.ptr<T>(), y.ptr<T>(), y.numel(),
                                                                       pixels.dim(1), pixels.dim(2), pixels.dim(3), ph,
                                                                       pw, y.dim(1));
  });
  MMX_CUDA_LAUNCH_CHECK();
}

void add_layout_ops(OpTable& ops) {
  ops.transpose12 = transpose12;
  ops.add_channel_bias = add_channel_bias;
  ops.concat1 = concat1;
  ops.geglu = geglu;
  ops.select_tokens = select_tokens;
  ops.patchify = patchify;
}

}  // namespace mmx::cuda
