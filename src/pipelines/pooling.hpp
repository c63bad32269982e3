// Pooling of hidden states and L2 normalisation (pooling.cpp), shared by the embedder and classifiers.
#pragma once
#include "mmx/embedding_space.hpp"
#include "mmx/tensor.hpp"

namespace mmx::detail {

// One row per input from last_hidden_state [B, L, D] and attention_mask [B, L]: cls, mean, mean-no-cls
// or lab (the poolings of token states; the others use the model's pooled output).
Tensor pool(Pooling pooling, const Tensor& hidden, const Tensor& mask);
// Rows divided by their L2 norm (torch.nn.functional.normalize, eps 1e-12).
void l2_normalize(Tensor& x);
void l2_normalize(float* row, int64_t d);  // one row

}  // namespace mmx::detail
