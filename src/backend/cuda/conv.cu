// nn.Conv2d on cuDNN (implicit-GEMM and Winograd/FFT engines chosen by its heuristics, no column
// matrix in memory), NCHW as the models hold it. F16/BF16 on tensor cores with f32 accumulation; F32
// with FMA math only (no TF32), like the rest of the backend. Where cuDNN is missing from the build or
// declines a shape, and with MMX_CUDA_CONV=im2col, the convolution is im2col + cuBLASLt (gemm.cu).
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <tuple>

#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/cuda_ops.hpp"

#if defined(MMX_HAS_CUDNN)
#include <cudnn.h>
#endif

namespace mmx::cuda {

namespace {

bool im2col_forced() {  // read on every call, so a test can compare both paths
  const char* e = std::getenv("MMX_CUDA_CONV");
  return e && std::strcmp(e, "im2col") == 0;
}

#if defined(MMX_HAS_CUDNN)
cudnnDataType_t cudnn_type(DType dtype) {
  return dtype == DType::F16 ? CUDNN_DATA_HALF : dtype == DType::BF16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
}

// Descriptors and the heuristic's algorithm per shape, found once (shapes repeat every step).
struct ConvPlan {
  bool usable = false;
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  cudnnConvolutionFwdAlgo_t algo{};
  size_t workspace = 0;
};
using ConvKey = std::tuple<int, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t>;

// The device's cuDNN handle (on its stream) and plans, kept as long as its backend.
struct Cudnn {
  std::mutex mutex;
  std::once_flag created;
  cudnnHandle_t handle = nullptr;  // null when cuDNN cannot be initialised: im2col is used
  std::map<ConvKey, ConvPlan> plans;
};

cudnnHandle_t handle(CudaBackend& cuda) {
  Cudnn& c = cuda.cache<Cudnn>();
  std::call_once(c.created, [&] {
    if (cudnnCreate(&c.handle) != CUDNN_STATUS_SUCCESS) c.handle = nullptr;
    else cudnnSetStream(c.handle, cuda.stream());
  });
  return c.handle;
}

const ConvPlan& plan_for(CudaBackend& cuda, const Tensor& x, const Tensor& weight, int64_t stride, int64_t padding,
                         const Tensor& y) {
  cudnnHandle_t dnn = handle(cuda);
  Cudnn& cache = cuda.cache<Cudnn>();
  std::lock_guard<std::mutex> lock(cache.mutex);
  std::map<ConvKey, ConvPlan>& plans = cache.plans;
  const ConvKey key{int(x.dtype()), x.dim(0), x.dim(1), x.dim(2), x.dim(3), weight.dim(0), weight.dim(2), weight.dim(3),
                    stride, padding};
  auto it = plans.find(key);
  if (it != plans.end()) return it->second;
  ConvPlan plan;
  const cudnnDataType_t type = cudnn_type(x.dtype());
  const auto i32 = [](int64_t v) { return static_cast<int>(v); };
  bool ok = dnn != nullptr && cudnnCreateTensorDescriptor(&plan.x) == CUDNN_STATUS_SUCCESS &&
            cudnnCreateTensorDescriptor(&plan.y) == CUDNN_STATUS_SUCCESS &&
            cudnnCreateFilterDescriptor(&plan.w) == CUDNN_STATUS_SUCCESS &&
            cudnnCreateConvolutionDescriptor(&plan.conv) == CUDNN_STATUS_SUCCESS;
  ok = ok && cudnnSetTensor4dDescriptor(plan.x, CUDNN_TENSOR_NCHW, type, i32(x.dim(0)), i32(x.dim(1)), i32(x.dim(2)),
                                        i32(x.dim(3))) == CUDNN_STATUS_SUCCESS;
  ok = ok && cudnnSetTensor4dDescriptor(plan.y, CUDNN_TENSOR_NCHW, type, i32(y.dim(0)), i32(y.dim(1)), i32(y.dim(2)),
                                        i32(y.dim(3))) == CUDNN_STATUS_SUCCESS;
  ok = ok && cudnnSetFilter4dDescriptor(plan.w, type, CUDNN_TENSOR_NCHW, i32(weight.dim(0)), i32(weight.dim(1)),
                                        i32(weight.dim(2)), i32(weight.dim(3))) == CUDNN_STATUS_SUCCESS;
  ok = ok && cudnnSetConvolution2dDescriptor(plan.conv, i32(padding), i32(padding), i32(stride), i32(stride), 1, 1,
                                             CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT) == CUDNN_STATUS_SUCCESS;
  ok = ok && cudnnSetConvolutionMathType(plan.conv, x.dtype() == DType::F32 ? CUDNN_FMA_MATH : CUDNN_TENSOR_OP_MATH) ==
                 CUDNN_STATUS_SUCCESS;
  if (ok) {
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int found = 0;
    ok = cudnnGetConvolutionForwardAlgorithm_v7(dnn, plan.x, plan.w, plan.conv, plan.y,
                                                CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &found, perf) == CUDNN_STATUS_SUCCESS;
    constexpr size_t kMaxWorkspace = size_t(512) << 20;
    bool chosen = false;
    for (int i = 0; ok && i < found && !chosen; ++i)
      if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].memory <= kMaxWorkspace &&
          (x.dtype() != DType::F32 || perf[i].mathType != CUDNN_TENSOR_OP_MATH)) {
        plan.algo = perf[i].algo;
        plan.workspace = perf[i].memory;
        chosen = true;
      }
    ok = ok && chosen;
  }
  plan.usable = ok;
  return plans.emplace(key, plan).first->second;
}
#endif

}  // namespace

void conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride, int64_t padding, DType /*compute*/,
            Tensor& y) {  // computes in the activations' dtype
  if (y.numel() == 0) return;
#if defined(MMX_HAS_CUDNN)
  const bool int_sized = x.numel() < (int64_t(1) << 31) && y.numel() < (int64_t(1) << 31);
  if (!im2col_forced() && int_sized) {
    CudaBackend& cuda = CudaBackend::of(y.device());
    const ConvPlan& plan = plan_for(cuda, x, weight, stride, padding, y);
    if (plan.usable) {
      Tensor workspace = plan.workspace ? Tensor::empty({int64_t(plan.workspace)}, DType::U8, y.device()) : Tensor();
      const float alpha = 1.f, beta = 0.f;
      const cudnnStatus_t status =
          cudnnConvolutionForward(handle(cuda), &alpha, plan.x, x.raw(), plan.w, weight.raw(), plan.conv, plan.algo,
                                  workspace.defined() ? workspace.raw_mutable() : nullptr, plan.workspace, &beta, plan.y,
                                  y.raw_mutable());
      if (status != CUDNN_STATUS_SUCCESS)
        fail("cuDNN convolution ", shape_str(x.shape()), " * ", shape_str(weight.shape()), ": ", cudnnGetErrorString(status),
             " (MMX_CUDA_CONV=im2col avoids cuDNN)");
      if (bias.defined()) add_conv_bias(y, bias);
      return;
    }
  }
#endif
  conv2d_im2col(x, weight, bias, stride, padding, y);
}

void add_conv_ops(OpTable& ops) { ops.conv2d = conv2d; }

}  // namespace mmx::cuda
