#include "models/roberta.hpp"

#include "models/bert.hpp"

namespace mmx {

std::unique_ptr<ModelParts> load_roberta(const JsonObject& json, const Checkpoint& checkpoint,
                                         const Placement& placement, HalfWeights half) {
  BertConfig defaults;  // RobertaConfig's defaults where they differ from BertConfig's
  defaults.vocab_size = 50265;
  defaults.pad_token_id = 1;
  BertConfig config = BertConfig::from_json(json, defaults);
  config.positions_after_padding_idx = true;
  config.weight_prefix = "roberta.";  // RobertaFor* and XLMRobertaFor* keep the encoder there
  if (config.pad_token_id < 0 || config.pad_token_id + 1 >= config.max_position_embeddings)
    fail(json.source(), ": pad_token_id ", config.pad_token_id, " leaves no row of the ",
         config.max_position_embeddings, " position embeddings for tokens (RoBERTa's positions start after it)");
  // token_type_ids: RoBERTa's tokenizers give none (zeros), and its single type row is added to every token.
  return load_bert_model(config, checkpoint, placement, half);
}

}  // namespace mmx
