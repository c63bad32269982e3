// Memory-bound ops: activations, broadcast add, embedding gather, softmax, layer and group norm,
// nearest upsampling and padding. One thread per element (grid-stride) or one block per row; all
// arithmetic in f32 whatever the storage dtype.
#include <vector>

#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/cuda_ops.hpp"

namespace mmx::cuda {

namespace {


template <class T>
__global__ void activation_kernel(T* x, int64_t n, int act) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    x[i] = from_float<T>(activate(to_float(x[i]), act));
}

template <class T>
__global__ void add_kernel(T* x, const T* y, int64_t n, int64_t period) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    x[i] = from_float<T>(to_float(x[i]) + to_float(y[i % period]));
}

template <class T>
__global__ void embedding_kernel(const T* weight, const int64_t* ids, T* y, int64_t rows, int64_t c) {
  const int64_t n = rows * c;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = weight[ids[i / c] * c + i % c];
}

// One block per row: max, then the sum of exponentials, then the normalised row.
template <class T>
__global__ void softmax_kernel(T* x, int64_t cols) {
  __shared__ float shared[32];
  T* row = x + blockIdx.x * cols;
  float m = -INFINITY;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) m = fmaxf(m, to_float(row[j]));
  m = block_max(m, shared);
  float s = 0.f;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) s += expf(to_float(row[j]) - m);
  s = block_sum(s, shared);
  const float inv = 1.f / s;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) row[j] = from_float<T>(expf(to_float(row[j]) - m) * inv);
}

// One block per row; the mean first, then the variance about it (two passes over the row, as precise as
// the CPU's double sums for the widths models use).
template <class T>
__global__ void layer_norm_kernel(const T* x, const float* w, const float* b, float eps, T* y, int64_t cols) {
  __shared__ float shared[32];
  const T* row = x + blockIdx.x * cols;
  T* out = y + blockIdx.x * cols;
  float s = 0.f;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) s += to_float(row[j]);
  const float mean = block_sum(s, shared) / float(cols);
  float v = 0.f;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
    const float d = to_float(row[j]) - mean;
    v += d * d;
  }
  const float rstd = rsqrtf(block_sum(v, shared) / float(cols) + eps);
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
    float r = (to_float(row[j]) - mean) * rstd;
    if (w) r *= w[j];
    if (b) r += b[j];
    out[j] = from_float<T>(r);
  }
}

// Group norm in two kernels, so that a few large groups (the VAE at 1024²: 32 groups of 4M values)
// still spread over every SM: partial sums of x and x² per chunk, added in double per group; then
// one elementwise pass that normalises, applies the affine parameters and the activation.
template <class T>
__global__ void group_stats_kernel(const T* x, int64_t group_size, int64_t chunk, double* stats) {
  __shared__ float shared[32];
  const int64_t g = blockIdx.y;
  const T* p = x + g * group_size;
  const int64_t begin = blockIdx.x * chunk, end = min(group_size, begin + chunk);
  float s = 0.f, q = 0.f;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    const float v = to_float(p[i]);
    s += v;
    q += v * v;
  }
  s = block_sum(s, shared);
  q = block_sum(q, shared);
  if (threadIdx.x == 0) {
    atomicAdd(&stats[2 * g], double(s));
    atomicAdd(&stats[2 * g + 1], double(q));
  }
}

template <class T>
__global__ void group_apply_kernel(const T* x, const double* stats, const float* w, const float* b, float eps, int act,
                                   T* y, int64_t n, int64_t channels, int64_t plane, int64_t channels_per_group) {
  const double count = double(channels_per_group * plane);
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t nc = i / plane, c = nc % channels, g = nc / channels_per_group;  // (n·C + c) / (C/G) = n·G + g
    const double mean = stats[2 * g] / count;
    const double var = fmax(stats[2 * g + 1] / count - mean * mean, 0.0);
    float r = float((double(to_float(x[i])) - mean) * rsqrt(var + double(eps)));
    if (w) r *= w[c];
    if (b) r += b[c];
    y[i] = from_float<T>(activate(r, act));
  }
}

template <class T>
__global__ void upsample_kernel(const T* x, T* y, int64_t planes, int64_t h, int64_t w) {
  const int64_t n = planes * 4 * h * w;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t ox = i % (2 * w), oy = (i / (2 * w)) % (2 * h), p = i / (4 * h * w);
    y[i] = x[(p * h + oy / 2) * w + ox / 2];
  }
}

template <class T>
__global__ void pad_kernel(const T* x, T* y, int64_t planes, int64_t h, int64_t w, int64_t ho, int64_t wo) {
  const int64_t n = planes * ho * wo;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t ox = i % wo, oy = (i / wo) % ho, p = i / (ho * wo);
    y[i] = oy < h && ox < w ? x[(p * h + oy) * w + ox] : from_float<T>(0.f);
  }
}

const float* param(const Tensor& t) { return t.defined() ? t.ptr<float>() : nullptr; }

}  // namespace

void activation(Tensor& x, ops::Activation act) {
  CudaBackend& cuda = CudaBackend::of(x.device());
  if (act == ops::Activation::Identity || x.numel() == 0) return;
  dispatch_float(x.dtype(), "activation", [&]<class T>() {
    activation_kernel<T><<<grid_for(x.numel()), kThreads, 0, cuda.stream()>>>(x.ptr<T>(), x.numel(), int(act));
  });
  MMX_CUDA_LAUNCH_CHECK();
}

void add(Tensor& x, const Tensor& y) {
  CudaBackend& cuda = CudaBackend::of(x.device());
  if (x.numel() == 0) return;
  dispatch_float(x.dtype(), "add", [&]<class T>() {
    add_kernel<T><<<grid_for(x.numel()), kThreads, 0, cuda.stream()>>>(x.ptr<T>(), y.ptr<T>(), x.numel(), y.numel());
  });
  MMX_CUDA_LAUNCH_CHECK();
}

void embedding(const Tensor& weight, const Tensor& ids, Tensor& y) {
  CudaBackend& cuda = CudaBackend::of(y.device());
  if (y.numel() == 0) return;
  const Tensor device_ids = ids.to(y.device());
  dispatch_float(weight.dtype(), "embedding", [&]<class T>() {
    embedding_kernel<T><<<grid_for(y.numel()), kThreads, 0, cuda.stream()>>>(weight.ptr<T>(), device_ids.ptr<int64_t>(),
                                                                           y.ptr<T>(), ids.numel(), weight.dim(1));
  });
  MMX_CUDA_LAUNCH_CHECK();
}

void softmax(Tensor& x) {
  CudaBackend& cuda = CudaBackend::of(x.device());
  const int64_t cols = x.dim(-1), rows = cols ? x.numel() / cols : 0;
  if (rows == 0) return;
  dispatch_float(x.dtype(), "softmax", [&]<class T>() {
    softmax_kernel<T><<<static_cast<unsigned>(rows), kThreads, 0, cuda.stream()>>>(x.ptr<T>(), cols);
  });
  MMX_CUDA_LAUNCH_CHECK();
}

void layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps, Tensor& y) {
  CudaBackend& cuda = CudaBackend::of(y.device());
  const int64_t cols = x.dim(-1), rows = cols ? x.numel() / cols : 0;
  if (rows == 0) return;
  dispatch_float(x.dtype(), "layer_norm", [&]<class T>() {
    layer_norm_kernel<T><<<static_cast<unsigned>(rows), kThreads, 0, cuda.stream()>>>(x.ptr<T>(), param(weight), param(bias),
                                                                                 eps, y.ptr<T>(), cols);
  });
  MMX_CUDA_LAUNCH_CHECK();
}

void group_norm(const Tensor& x, int64_t groups, const Tensor& weight, const Tensor& bias, float eps,
                ops::Activation act, Tensor& y) {
  CudaBackend& cuda = CudaBackend::of(y.device());
  if (x.numel() == 0) return;
  const int64_t batch = x.dim(0), channels = x.dim(1), plane = x.numel() / (batch * channels);
  const int64_t group_size = channels / groups * plane;
  const int64_t chunk = 16384;
  Tensor stats = Tensor::zeros({batch * groups, 2}, DType::F64, y.device());
  dispatch_float(x.dtype(), "group_norm", [&]<class T>() {
    const dim3 grid(static_cast<unsigned>((group_size + chunk - 1) / chunk), static_cast<unsigned>(batch * groups));
    group_stats_kernel<T><<<grid, kThreads, 0, cuda.stream()>>>(x.ptr<T>(), group_size, chunk, stats.ptr<double>());
    MMX_CUDA_LAUNCH_CHECK();
    group_apply_kernel<T><<<grid_for(x.numel()), kThreads, 0, cuda.stream()>>>(
        x.ptr<T>(), stats.ptr<double>(), param(weight), param(bias), eps, int(act), y.ptr<T>(), x.numel(), channels,
        plane, channels / groups);
  });
  MMX_CUDA_LAUNCH_CHECK();
}

void upsample_nearest2x(const Tensor& x, Tensor& y) {
  CudaBackend& cuda = CudaBackend::of(y.device());
  if (y.numel() == 0) return;
  dispatch_float(x.dtype(), "upsample", [&]<class T>() {
    upsample_kernel<T><<<grid_for(y.numel()), kThreads, 0, cuda.stream()>>>(x.ptr<T>(), y.ptr<T>(), x.dim(0) * x.dim(1),
                                                                       x.dim(2), x.dim(3));
  });
  MMX_CUDA_LAUNCH_CHECK();
}

void pad_bottom_right(const Tensor& x, Tensor& y) {
  CudaBackend& cuda = CudaBackend::of(y.device());
  if (y.numel() == 0) return;
  dispatch_float(x.dtype(), "pad", [&]<class T>() {
    pad_kernel<T><<<grid_for(y.numel()), kThreads, 0, cuda.stream()>>>(x.ptr<T>(), y.ptr<T>(), x.dim(0) * x.dim(1), x.dim(2),
                                                                  x.dim(3), y.dim(2), y.dim(3));
  });
  MMX_CUDA_LAUNCH_CHECK();
}

void add_elementwise_ops(OpTable& ops) {
  ops.activation = activation;
  ops.add = add;
  ops.embedding = embedding;
  ops.softmax = softmax;
  ops.layer_norm = layer_norm;
  ops.group_norm = group_norm;
  ops.upsample_nearest2x = upsample_nearest2x;
  ops.pad_bottom_right = pad_bottom_right;
}

}  // namespace mmx::cuda
