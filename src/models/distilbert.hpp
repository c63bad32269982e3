// DistilBERT encoder (transformers DistilBertModel): word + absolute position embeddings (no token
// types), post-norm transformer blocks (attention → sa_layer_norm, FFN → output_layer_norm, every
// LayerNorm at eps 1e-12 as modeling_distilbert.py hard-codes), no pooler.
#pragma once
#include "io/json_config.hpp"
#include "models/encoder.hpp"
#include "models/weights.hpp"

namespace mmx {

// The registry's factory (models/registry.cpp).
std::unique_ptr<ModelParts> load_distilbert(const JsonObject& config, const Checkpoint& checkpoint,
                                            const Placement& placement, HalfWeights half);

}  // namespace mmx
