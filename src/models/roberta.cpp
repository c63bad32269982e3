#include "models/roberta.hpp"

#include "models/bert.hpp"

namespace mmx {
namespace {

class RobertaParts final : public ModelParts, public TextEncoder {
 public:
  RobertaParts(const BertConfig& config, WeightLoader& weights) : model_(config, weights) {}
  const TextEncoder* text() const override { return this; }
  std::string description() const override {
    const auto& c = model_.config();
    return str("roberta: ", c.num_hidden_layers, " layers, hidden ", c.hidden_size, ", ", c.num_attention_heads,
               " heads, intermediate ", c.intermediate_size, ", ", c.hidden_act);
  }
  EncoderOutputs forward(const Tensor& input_ids, const Tensor&, const Tensor& attention_mask,
                         bool output_hidden_states) const override {
    EncoderOutputs out;
    TraceFn trace;
    if (output_hidden_states) trace = [&out](const std::string&, const Tensor& t) { out.hidden_states.push_back(t); };
    // token_type_ids are not inputs of RoBERTa's tokenizers; the model's buffer is zeros.
    BertOutputs o = model_.forward(input_ids, Tensor(), attention_mask, trace);
    out.last_hidden_state = o.last_hidden_state;
    out.pooler_output = o.pooler_output;
    return out;
  }
  // Positions padding_idx + 1 … max_position_embeddings − 1 hold tokens (514 rows: 512 tokens).
  int64_t max_positions() const override {
    const auto& c = model_.config();
    return c.max_position_embeddings - c.pad_token_id - 1;
  }
  bool has_pooler() const override { return model_.has_pooler(); }

 private:
  BertModel model_;
};

}  // namespace

std::unique_ptr<ModelParts> load_roberta(const JsonObject& json, const Checkpoint& checkpoint, const Placement& placement,
                                         HalfWeights half) {
  BertConfig defaults;  // RobertaConfig's defaults where they differ from BertConfig's
  defaults.vocab_size = 50265;
  defaults.pad_token_id = 1;
  defaults.positions_after_padding_idx = true;
  defaults.weight_prefix = "roberta.";
  BertConfig config = BertConfig::from_json(json, defaults);
  config.positions_after_padding_idx = true;
  config.weight_prefix = "roberta.";
  if (config.pad_token_id < 0 || config.pad_token_id >= config.max_position_embeddings)
    fail(json.source(), ": pad_token_id ", config.pad_token_id, " is not a row of the ", config.max_position_embeddings,
         " position embeddings (RoBERTa's positions start after it)");
  WeightLoader loader(checkpoint, placement, half);
  return std::make_unique<RobertaParts>(config, loader);
}

}  // namespace mmx
