// CPU kernels (f32). Each fast kernel has a plain reference twin (`*_ref`) used by the op tests.
#pragma once
#include <cstdlib>
#include <memory>

#include "backend/ops.hpp"

namespace mmx::cpu {

void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
          const float* b, int64_t ldb, float beta, float* c, int64_t ldc);
void gemm_ref(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
              int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);
void linear(const Tensor& x, const Tensor& weight, const ops::PackedWeight& packed, const Tensor& bias,
            const ops::LinearFusion& fusion, Tensor& y);
ops::PackedWeight pack_linear_weight(const Tensor& weight);
void layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps, Tensor& y);
void activation(Tensor& x, ops::Activation act);
void softmax(Tensor& x);
void add(Tensor& x, const Tensor& y);
void embedding(const Tensor& weight, const Tensor& ids, Tensor& y);
void attention(const Tensor& q, const Tensor& k, const Tensor& v, int64_t heads, const Tensor& key_padding_mask,
               bool causal, const Tensor& score_bias, Tensor& y);
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

void conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride, int64_t padding, Tensor& y);
void group_norm(const Tensor& x, int64_t groups, const Tensor& weight, const Tensor& bias, float eps, ops::Activation act,
                Tensor& y);
void upsample_nearest2x(const Tensor& x, Tensor& y);
void pad_bottom_right(const Tensor& x, Tensor& y);  // y is larger than x; the extra rows/columns get 0
void transpose12(const Tensor& x, Tensor& y);
void add_channel_bias(Tensor& x, const Tensor& v);
void concat1(const Tensor& a, const Tensor& b, Tensor& y);
void geglu(const Tensor& x, Tensor& y);
void select_tokens(const Tensor& x, const std::vector<int64_t>& positions, Tensor& y);
void patchify(const Tensor& pixels, int64_t patch_height, int64_t patch_width, Tensor& y);

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
