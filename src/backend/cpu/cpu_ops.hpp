// CPU kernels (f32). Each op-family file fills its entries of the CPU backend's op table (add_*_ops);
// what is declared here is shared between those files, or is a plain reference twin (`*_ref`) of a fast
// kernel that the op tests compare with.
#pragma once
#include <cstdlib>
#include <memory>

#include "backend/backend.hpp"

namespace mmx::cpu {

// The op families (gemm.cpp: gemm, linear, pack_linear_weight; norm.cpp: layer_norm; softmax.cpp;
// attention.cpp; elementwise.cpp: activation, add, embedding; conv.cpp: conv2d, group_norm, upsample, pad;
// layout.cpp: transpose12, add_channel_bias, concat1, geglu, select_tokens, patchify).
void add_gemm_ops(OpTable& ops);
void add_norm_ops(OpTable& ops);
void add_softmax_ops(OpTable& ops);
void add_attention_ops(OpTable& ops);
void add_elementwise_ops(OpTable& ops);
void add_conv_ops(OpTable& ops);
void add_layout_ops(OpTable& ops);

void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
          const float* b, int64_t ldb, float beta, float* c, int64_t ldc);
// activation and add (elementwise.cpp) also finish the unfused paths of linear and geglu.
void activation(Tensor& x, ops::Activation act);
void add(Tensor& x, const Tensor& y);
void gemm_ref(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
              int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);
void attention_ref(const Tensor& q, const Tensor& k, const Tensor& v, int64_t heads,
                   const Tensor& key_padding_mask, bool causal, const Tensor& score_bias, Tensor& y);

// Weights may stay in their stored half precision (F16/BF16, mapped from the file); kernels widen
// the rows they need into f32 scratch, `count` elements from element `first`.
void widen_to_f32(const Tensor& t, int64_t first, int64_t count, float* dst);
// The calling thread's scratch for a widened weight, at least `floats` long (valid until its next call).
float* weight_scratch(int64_t floats);

// A grow-only, 64-byte-aligned float buffer (kept thread_local by its users): its pages stay warm across
// calls and it never holds more than the largest request seen, unlike a cache of freed blocks.
class ScratchBuffer {
 public:
  float* get(int64_t floats, const char* what);

 private:
  std::unique_ptr<float, void (*)(void*)> data_{nullptr, &std::free};
  int64_t capacity_ = 0;
};


// GELU (erf form), SiLU x·σ(x) and quick_gelu x·σ(1.702x) over n floats in place, AVX2 + FMA
// (isa/gelu_avx2.cpp).
void gelu_erf_span_avx2(float* x, int64_t n);
void gelu_erf_span_avx512(float* x, int64_t n);  // the same arithmetic on 16 lanes
void silu_span_avx2(float* x, int64_t n);
void quick_gelu_span_avx2(float* x, int64_t n);

// exp(row[j] − max) in place (0 where keep[j] is 0) and their sum, AVX2 + FMA (isa/softmax_avx2.cpp).
float softmax_exp_avx2(float* row, const uint8_t* keep, int64_t n, float max);

// exp(row[j] − max) in place (0 where keep[j] is 0) and their sum; AVX2 when the CPU has it.
float softmax_exp(float* row, const uint8_t* keep, int64_t n, float max);

// One LayerNorm row (double sums, the scalar arithmetic otherwise), AVX2 (isa/softmax_avx2.cpp).
void layer_norm_row_avx2(const float* row, int64_t c, const float* w, const float* b, float eps, float* out);

// row[j] *= scale in place, and the largest result (AVX2 + FMA; isa/softmax_avx2.cpp).
float scale_and_max_avx2(float* row, int64_t n, float scale);

// Softmax of one row in place, over the entries where keep[j] is true; the others become 0.
// With no entry kept, every entry gets 1/n: transformers adds finfo.min to hidden scores, so a
// fully hidden row is uniform there too.
void softmax_row_masked(float* row, const uint8_t* keep, int64_t n);

}  // namespace mmx::cpu
