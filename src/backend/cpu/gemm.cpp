// GEMM through oneDNN's dnnl_sgemm (row-major, OpenMP runtime): chosen over OpenBLAS and BLIS by
// bench/gemm_library_choice.cpp on the models' shapes (docs/gemm-library.md).
#include <dnnl.h>

#include <cstring>

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
  gemm(false, true, rows, n, k, 1.f, x.data<float>(), k, weight.data<float>(), k, beta, out, n);
}

}  // namespace mmx::cpu
