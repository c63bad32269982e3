// Pooling of hidden states and L2 normalisation, shared by the embed pipelines.
#pragma once
#include <memory>

#include "mmx/embed.hpp"
#include "models/model_folder.hpp"

namespace mmx::detail {

// Pools rows of last_hidden_state [B, L, D] into rows row0… of `out` (cls, pooler, mean, mean-no-cls, lab).
void pool(Pooling pooling, const Tensor& hidden, const Tensor& mask, const Tensor& pooler_output, Tensor& out,
          int64_t row0);
// Rows divided by their L2 norm (torch.nn.functional.normalize, eps 1e-12).
void l2_normalize(Tensor& x);

// CLIP embedders (pipelines/embed_clip.cpp).
std::unique_ptr<TextEmbedder> load_clip_text_embedder(const ModelFolder& folder);
std::unique_ptr<ImageEmbedder> load_clip_image_embedder(const ModelFolder& folder);

}  // namespace mmx::detail
