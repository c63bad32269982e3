// RoBERTa and XLM-RoBERTa (transformers RobertaModel, XLMRobertaModel, CamembertModel): BERT's encoder
// and pooler with RoBERTa's embeddings, whose position ids start after padding_idx
// (create_position_ids_from_input_ids in modeling_roberta.py) and whose single token type is always 0.
#pragma once
#include "io/json_config.hpp"
#include "models/encoder.hpp"
#include "models/weights.hpp"

namespace mmx {

// The registry's factory (models/registry.cpp).
std::unique_ptr<ModelParts> load_roberta(const JsonObject& config, const Checkpoint& checkpoint,
                                         const Placement& placement, HalfWeights half);

}  // namespace mmx
