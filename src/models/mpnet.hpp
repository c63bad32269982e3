// MPNet encoder (transformers MPNetModel): RoBERTa-style embeddings (positions after padding_idx 1, no
// token types), BERT's post-norm layers, and one relative position bias shared by every layer
// (MPNetEncoder.compute_position_bias: T5's bucketed distances, 32 buckets up to distance 128).
#pragma once
#include <cstdint>

#include "io/json_config.hpp"
#include "models/encoder.hpp"
#include "models/weights.hpp"

namespace mmx {

// MPNetEncoder.relative_position_bucket for one distance (key position − query position), with its
// float32 arithmetic, so buckets at the log-spaced boundaries match PyTorch's.
int64_t mpnet_relative_position_bucket(int64_t relative_position, int64_t num_buckets = 32, int64_t max_distance = 128);

// The registry's factory (models/registry.cpp).
std::unique_ptr<ModelParts> load_mpnet(const JsonObject& config, const Checkpoint& checkpoint,
                                       const Placement& placement, HalfWeights half);

}  // namespace mmx
