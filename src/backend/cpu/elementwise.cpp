#include <algorithm>
#include <cmath>
#include <cstring>

#include "backend/cpu/cpu_ops.hpp"
#include "backend/cpu/gemm_packed.hpp"
#include "core/cpu.hpp"
#include "core/thread_pool.hpp"
#include "backend/cpu/vec_math.hpp"

namespace mmx::cpu {

namespace {
// GELU is the one activation on a hot path (BERT/ViT MLPs): an AVX2+FMA kernel (isa/gelu_avx2.cpp)
// when the CPU has it, the same formula in scalar code otherwise.
void gelu_erf_span(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = 0.5f * x[i] * (1.f + erf_approx(x[i] * 0.70710678118654752f));
}

bool avx2() {
  static const bool has = cpu_features().avx2 && cpu_features().fma;
  return has;
}
bool avx512() {
  static const bool has = cpu_features().avx512f && avx2();
  return has;
}

template <class F>
void map_span(float* x, int64_t n, F f) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) x[i] = f(x[i]);
}
}  // namespace

void activation_span(float* p, int64_t n, ops::Activation act) {
  using ops::Activation;
  switch (act) {
    case Activation::GeluErf:  // torch.nn.functional.gelu: x·Φ(x) = x·(1 + erf(x/√2))/2
      if (avx512()) return gelu_erf_span_avx512(p, n);
      return avx2() ? gelu_erf_span_avx2(p, n) : gelu_erf_span(p, n);
    case Activation::GeluTanh:  // gelu_new / gelu_pytorch_tanh
      return map_span(p, n, [](float v) {
        const float k = 0.7978845608028654f;  // sqrt(2/π)
        return 0.5f * v * (1.f + std::tanh(k * (v + 0.044715f * v * v * v)));
      });
    case Activation::QuickGelu:  // CLIP's x·σ(1.702x)
      if (avx2()) return quick_gelu_span_avx2(p, n);
      return map_span(p, n, [](float v) { return v / (1.f + std::exp(-1.702f * v)); });
    case Activation::Relu:
      return map_span(p, n, [](float v) { return v > 0.f ? v : 0.f; });
    case Activation::Silu:
      if (avx2()) return silu_span_avx2(p, n);
      return map_span(p, n, [](float v) { return v / (1.f + std::exp(-v)); });
    case Activation::Tanh:
      return map_span(p, n, [](float v) { return std::tanh(v); });
    case Activation::Sigmoid:
      return map_span(p, n, [](float v) { return 1.f / (1.f + std::exp(-v)); });
    case Activation::Identity:
      return;
  }
}

void activation(Tensor& x, ops::Activation act) {
  // Threads split the tensor into chunks; each chunk runs the same span code the GEMM epilogue uses.
  constexpr int64_t kChunk = 1 << 14;
  float* p = x.data<float>();
  const int64_t n = x.numel(), chunks = (n + kChunk - 1) / kChunk;
  parallel_for(chunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) activation_span(p + c * kChunk, std::min(kChunk, n - c * kChunk), act);
  });
}

void add(Tensor& x, const Tensor& y) {
  float* a = x.data<float>();
  const float* b = y.data<float>();
  const int64_t n = x.numel(), m = y.numel();
  if (m == n) {
    parallel_for(n, kParallelGrainItems, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) a[i] += b[i];
    });
    return;
  }
  const int64_t rows = n / m;  // y repeats over the leading dimensions
  parallel_for(rows, grain_rows(m), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t i = 0; i < m; ++i) a[r * m + i] += b[i];
  });
}

void embedding(const Tensor& weight, const Tensor& ids, Tensor& y) {
  const int64_t c = weight.dim(1), n = ids.numel();
  const float* table = weight.data<float>();
  const int64_t* index = ids.data<int64_t>();
  float* out = y.data<float>();
  for (int64_t i = 0; i < n; ++i) std::memcpy(out + i * c, table + index[i] * c, sizeof(float) * c);
}

void add_elementwise_ops(OpTable& ops) {
  ops.activation = activation;
  ops.add = add;
  ops.embedding = embedding;
}

}  // namespace mmx::cpu
