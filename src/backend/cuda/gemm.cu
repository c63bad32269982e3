// Matrix products on cuBLASLt: nn.Linear, and convolution as a GEMM over image columns (im2col: the
// fallback of conv.cu's cuDNN path, and MMX_CUDA_CONV=im2col).
// F16/BF16 run on tensor cores with f32 accumulation; F32 computes in true f32 (no TF32), so an f32
// run matches the CPU within its tolerances.
#include <map>
#include <mutex>
#include <tuple>

#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/cuda_ops.hpp"

namespace mmx::cuda {

namespace {

cudaDataType_t cuda_type(DType dtype) {
  switch (dtype) {
    case DType::F32: return CUDA_R_32F;
    case DType::F16: return CUDA_R_16F;
    case DType::BF16: return CUDA_R_16BF;
    default: fail("cuBLASLt: no matrix type for ", dtype_name(dtype));
  }
}

// One cuBLASLt matmul plan per shape: descriptors and the heuristic's algorithm, found once and kept
// (a model's shapes repeat every layer and every step).
struct Plan {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
};
using PlanKey = std::tuple<int, bool, bool, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, uint32_t>;

// The largest power of two (up to 256) dividing the address: cuBLASLt's heuristic assumes 256-byte
// aligned operands unless told, and views such as a convolution's column tile start anywhere.
uint32_t alignment(const void* p) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  return a == 0 ? 256u : static_cast<uint32_t>(std::min<uintptr_t>(256, a & (~a + 1)));
}

// The device's plans, kept as long as its backend.
struct Plans {
  std::mutex mutex;
  std::map<PlanKey, Plan> by_key;
};

const Plan& plan_for(CudaBackend& cuda, DType dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                     int64_t lda, int64_t ldb, int64_t ldd, uint32_t align_a, uint32_t align_b, uint32_t align_c,
                     uint32_t align_d) {
  Plans& cache = cuda.cache<Plans>();
  std::lock_guard<std::mutex> lock(cache.mutex);
  std::map<PlanKey, Plan>& plans = cache.by_key;
  const auto log2 = [](uint32_t v) { return uint32_t(31 - __builtin_clz(v)); };  // each a power of two ≤ 256
  const uint32_t aligns = log2(align_a) | log2(align_b) << 8 | log2(align_c) << 16 | log2(align_d) << 24;
  const PlanKey key{int(dtype), trans_a, trans_b, m, n, k, lda, ldb, ldd, aligns};
  auto it = plans.find(key);
  if (it != plans.end()) return it->second;
  Plan plan;
  const cudaDataType_t type = cuda_type(dtype);
  MMX_CUBLAS_CHECK(cublasLtMatmulDescCreate(&plan.op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t ta = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, tb = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  MMX_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan.op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
  MMX_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan.op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
  // Column-major layouts: A is m×k (k×m stored when transposed), B k×n (n×k), C and D m×n.
  MMX_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan.a, type, trans_a ? k : m, trans_a ? m : k, lda));
  MMX_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan.b, type, trans_b ? n : k, trans_b ? k : n, ldb));
  MMX_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan.c, type, m, n, ldd));
  size_t workspace_bytes = 0;
  cuda.workspace(&workspace_bytes);
  cublasLtMatmulPreference_t preference = nullptr;
  MMX_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&preference));
  MMX_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                        &workspace_bytes, sizeof(workspace_bytes)));
  const std::pair<cublasLtMatmulPreferenceAttributes_t, uint32_t> minimum_alignments[] = {
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, align_a}, {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, align_b},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, align_c}, {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, align_d}};
  for (const auto& [attribute, bytes] : minimum_alignments)
    MMX_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(preference, attribute, &bytes, sizeof(bytes)));
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  MMX_CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(cuda.cublaslt(), plan.op, plan.a, plan.b, plan.c, plan.c, preference, 1,
                                                  &result, &found));
  cublasLtMatmulPreferenceDestroy(preference);
  if (found == 0) fail("cuBLASLt has no algorithm for a ", dtype_name(dtype), " ", m, "×", n, "×", k, " product");
  plan.algo = result.algo;
  return plans.emplace(key, plan).first->second;
}

// D = op(A)·op(B) + beta·C in column-major terms; C (when beta ≠ 0) has D's layout.
void matmul(CudaBackend& cuda, DType dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const void* a,
            int64_t lda, const void* b, int64_t ldb, float beta, const void* c, void* d, int64_t ldd) {
  const void* c_or_d = beta != 0.f ? c : d;
  const Plan& plan = plan_for(cuda, dtype, trans_a, trans_b, m, n, k, lda, ldb, ldd, alignment(a), alignment(b),
                              alignment(c_or_d), alignment(d));
  const float alpha = 1.f;
  size_t workspace_bytes = 0;
  void* workspace = cuda.workspace(&workspace_bytes);
  MMX_CUBLAS_CHECK(cublasLtMatmul(cuda.cublaslt(), plan.op, &alpha, a, plan.a, b, plan.b, &beta, c_or_d, plan.c, d, plan.c,
                                  &plan.algo, workspace, workspace_bytes, cuda.stream()));
}


// y[r, c] = act(y[r, c] + bias[c]) over rows of `cols` (the linear's epilogue; the residual came in as C).
template <class T>
__global__ void bias_act_kernel(T* y, const float* bias, int64_t n, int64_t cols, int act) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    float v = to_float(y[i]);
    if (bias) v += bias[i % cols];
    y[i] = from_float<T>(activate(v, act));
  }
}

// y[o, p] += bias[o] over planes of `plane` (the convolution's bias, per output channel).
template <class T>
__global__ void channel_bias_kernel(T* y, const float* bias, int64_t n, int64_t channels, int64_t plane) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = from_float<T>(to_float(y[i]) + bias[(i / plane) % channels]);
}

// The image columns of one input image for output positions [p0, p0 + count): col[q, p − p0] with
// q = (c·kh + i)·kw + j, zero where the window leaves the image.
template <class T>
__global__ void im2col_kernel(const T* x, T* col, int64_t channels, int64_t h, int64_t w, int64_t kh, int64_t kw,
                              int64_t stride, int64_t padding, int64_t wo, int64_t p0, int64_t count) {
  const int64_t n = channels * kh * kw * count;
  for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < n; idx += int64_t(gridDim.x) * blockDim.x) {
    const int64_t p = p0 + idx % count, q = idx / count;
    const int64_t j = q % kw, i = (q / kw) % kh, c = q / (kw * kh);
    const int64_t iy = (p / wo) * stride - padding + i, ix = (p % wo) * stride - padding + j;
    col[idx] = iy >= 0 && iy < h && ix >= 0 && ix < w ? x[(c * h + iy) * w + ix] : from_float<T>(0.f);
  }
}

}  // namespace

void linear(const Tensor& x, const Tensor& weight, const ops::PackedWeight& packed, const Tensor& bias,
            const ops::LinearFusion& fusion, Tensor& y) {
  CudaBackend& cuda = CudaBackend::of(y.device());
  const Tensor& w = packed.defined() ? packed.data : weight;
  const int64_t out = y.dim(-1), in = x.dim(-1), rows = in ? x.numel() / in : y.numel() / std::max<int64_t>(out, 1);
  if (y.numel() == 0) return;
  // Row-major y[rows, out] = x[rows, in] · w[out, in]ᵀ is, column-major, yᵀ[out, rows] = w · xᵀ.
  const bool residual = fusion.residual.defined();
  if (in == 0) {
    if (residual)
      MMX_CUDA_CHECK(cudaMemcpyAsync(y.raw_mutable(), fusion.residual.raw(), y.nbytes(), cudaMemcpyDeviceToDevice, cuda.stream()));
    else
      MMX_CUDA_CHECK(cudaMemsetAsync(y.raw_mutable(), 0, y.nbytes(), cuda.stream()));
  } else {
    matmul(cuda, x.dtype(), true, false, out, rows, in, w.raw(), in, x.raw(), in, residual ? 1.f : 0.f,
           residual ? fusion.residual.raw() : nullptr, y.raw_mutable(), out);
  }
  if (!bias.defined() && fusion.act == ops::Activation::Identity) return;
  dispatch_float(y.dtype(), "linear", [&]<class T>() {
    bias_act_kernel<T><<<grid_for(y.numel()), kThreads, 0, cuda.stream()>>>(
        y.ptr<T>(), bias.defined() ? bias.ptr<float>() : nullptr, y.numel(), out, int(fusion.act));
  });
  MMX_CUDA_LAUNCH_CHECK();
}

ops::PackedWeight pack_linear_weight(const Tensor&, DType) { return {}; }  // cuBLASLt reads [out, in] as stored

void conv2d_im2col(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride, int64_t padding, Tensor& y) {
  CudaBackend& cuda = CudaBackend::of(y.device());
  const int64_t batch = x.dim(0), channels = x.dim(1), h = x.dim(2), w = x.dim(3);
  const int64_t out = weight.dim(0), kh = weight.dim(2), kw = weight.dim(3), ho = y.dim(2), wo = y.dim(3);
  const int64_t positions = ho * wo, depth = channels * kh * kw;
  if (y.numel() == 0) return;
  const size_t elem = dtype_size(x.dtype());
  const bool direct = kh == 1 && kw == 1 && stride == 1 && padding == 0;  // the image is its own column matrix
  // Columns in tiles of at most 256 MiB (the VAE's 128 channels at 1024² would need 2.4 GB at once).
  // (a multiple of 64 positions, so each tile's output starts 128-byte aligned when the image does)
  const int64_t tile =
      direct ? positions : std::min<int64_t>(positions, std::max<int64_t>(64, (int64_t(256) << 20) / (depth * elem) / 64 * 64));
  Tensor col = direct ? Tensor() : Tensor::empty({depth * tile}, x.dtype(), x.device());
  for (int64_t b = 0; b < batch; ++b) {
    const char* image = x.ptr<char>() + b * channels * h * w * elem;
    char* result = y.ptr<char>() + b * out * positions * elem;
    for (int64_t p0 = 0; p0 < positions; p0 += tile) {
      const int64_t count = std::min(tile, positions - p0);
      const void* columns = image;
      if (!direct) {
        dispatch_float(x.dtype(), "conv2d", [&]<class T>() {
          im2col_kernel<T><<<grid_for(depth * count), kThreads, 0, cuda.stream()>>>(
              reinterpret_cast<const T*>(image), col.ptr<T>(), channels, h, w, kh, kw, stride, padding, wo, p0, count);
        });
        MMX_CUDA_LAUNCH_CHECK();
        columns = col.raw();
      }
      // Row-major y[out, positions] = weight[out, depth] · col[depth, count]: column-major
      // yᵀ[count, out] = colᵀ · weightᵀ, with col read as a count×depth matrix (ld count).
      matmul(cuda, x.dtype(), false, false, count, out, depth, columns, direct ? positions : count, weight.raw(), depth, 0.f,
             nullptr, result + p0 * elem, positions);
    }
  }
  if (bias.defined()) add_conv_bias(y, bias);
}

void add_conv_bias(Tensor& y, const Tensor& bias) {
  CudaBackend& cuda = CudaBackend::of(y.device());
  const int64_t channels = y.dim(1), positions = y.dim(2) * y.dim(3);
  dispatch_float(y.dtype(), "conv2d", [&]<class T>() {
    channel_bias_kernel<T><<<grid_for(y.numel()), kThreads, 0, cuda.stream()>>>(y.ptr<T>(), bias.ptr<float>(), y.numel(),
                                                                           channels, positions);
  });
  MMX_CUDA_LAUNCH_CHECK();
}

void add_gemm_ops(OpTable& ops) {
  ops.linear = linear;
  ops.pack_linear_weight = pack_linear_weight;
}

}  // namespace mmx::cuda
