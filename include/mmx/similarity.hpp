// Similarity matrices between two embedding sets, rows × columns, with the lab's softmax
// (src/pipelines/similarity.cpp).
#pragma once
#include <optional>
#include <string>

#include "mmx/embedding_space.hpp"
#include "mmx/tensor.hpp"

namespace mmx {

// torch's meaning: dim0 normalises down each column (the lab's .softmax(dim=0)), dim1 along each row.
enum class SoftmaxDim { None, Dim0, Dim1 };
SoftmaxDim softmax_dim_from_name(const std::string& name);  // "dim0", "dim1", "none"
const char* softmax_dim_name(SoftmaxDim dim);

// rows [R, D] and cols [C, D] F32 → [R, C]. Different D is an error naming both sizes;
// ClipLogits needs logit_scale (the stored log-scale of a CLIP checkpoint).
Tensor similarity_matrix(const Tensor& rows, const Tensor& cols, Score score,
                         std::optional<float> logit_scale = std::nullopt);
void softmax_(Tensor& matrix, SoftmaxDim dim);

}  // namespace mmx
