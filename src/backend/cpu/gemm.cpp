// GEMM through oneDNN's dnnl_sgemm (row-major, OpenMP runtime): chosen over OpenBLAS and BLIS by
// bench/gemm_library_choice.cpp on the models' shapes (docs/gemm-library.md).
#include <dnnl.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/half.hpp"

#include "backend/cpu/cpu_ops.hpp"

namespace mmx::cpu {

void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
          const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {  // C = beta·C; oneDNN rejects K = 0
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = beta == 0.f ? 0.f : beta * c[i * ldc + j];
    return;
  }
  const dnnl_status_t status = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb,
                                          beta, c, ldc);
  if (status != dnnl_success)
    fail("dnnl_sgemm failed (status ", static_cast<int>(status), ") for m=", m, " n=", n, " k=", k);
}

void gemm_ref(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
              int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double sum = 0;
      for (int64_t p = 0; p < k; ++p)
        sum += double(trans_a ? a[p * lda + i] : a[i * lda + p]) * double(trans_b ? b[j * ldb + p] : b[p * ldb + j]);
      c[i * ldc + j] = static_cast<float>(alpha * sum + (beta == 0.f ? 0.0 : double(beta) * c[i * ldc + j]));
    }
}

namespace {
// A half-precision weight is widened this many f32 at a time (4 MiB): small beside the model, large
// enough that each GEMM call still sees hundreds of output features and packs its input rarely.
constexpr int64_t kWeightPanelFloats = int64_t(1) << 20;
}  // namespace

void widen_to_f32(const Tensor& t, int64_t first, int64_t count, float* dst) {
  if (first < 0 || count < 0 || first + count > t.numel()) fail("widen_to_f32: range outside ", shape_str(t.shape()));
  const DType dtype = t.dtype();
  if (dtype == DType::F32) {
    std::memcpy(dst, t.data<float>() + first, sizeof(float) * count);
    return;
  }
  if (dtype != DType::F16 && dtype != DType::BF16) fail("widen_to_f32: unsupported dtype ", dtype_name(dtype));
  const uint16_t* src = static_cast<const uint16_t*>(t.raw()) + first;
  constexpr int64_t kChunk = 1 << 15;
#pragma omp parallel for schedule(static) if (count > 2 * kChunk)
  for (int64_t c0 = 0; c0 < count; c0 += kChunk) {
    const size_t len = static_cast<size_t>(std::min(kChunk, count - c0));
    if (dtype == DType::F16) f16_to_f32(src + c0, dst + c0, len);
    else bf16_to_f32(src + c0, dst + c0, len);
  }
}

void linear(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& y) {
  const int64_t k = x.dim(-1), n = weight.dim(0), rows = x.numel() / (k ? k : 1);
  float* out = y.data<float>();
  float beta = 0.f;
  if (bias.defined()) {  // start from the bias and accumulate the product onto it
    const float* b = bias.data<float>();
#pragma omp parallel for if (rows * n > (1 << 16))
    for (int64_t r = 0; r < rows; ++r) std::memcpy(out + r * n, b, sizeof(float) * n);
    beta = 1.f;
  }
  if (weight.dtype() == DType::F32) {
    gemm(false, true, rows, n, k, 1.f, x.data<float>(), k, weight.data<float>(), k, beta, out, n);
    return;
  }
  // y[:, n0:n0+nb] = x · W[n0:n0+nb]ᵀ with that panel of W widened to f32.
  const int64_t panel = std::clamp<int64_t>(kWeightPanelFloats / std::max<int64_t>(k, 1), 1, n);
  std::vector<float> wide(static_cast<size_t>(panel * k));
  for (int64_t n0 = 0; n0 < n; n0 += panel) {
    const int64_t nb = std::min(panel, n - n0);
    widen_to_f32(weight, n0 * k, nb * k, wide.data());
    gemm(false, true, rows, nb, k, 1.f, x.data<float>(), k, wide.data(), k, beta, out + n0, n);
  }
}

}  // namespace mmx::cpu
