// BERT encoder (transformers BertModel): embeddings, post-norm encoder, tanh pooler.
// Follows transformers v4.45.0 src/transformers/models/bert/modeling_bert.py, module by module.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "backend/ops.hpp"
#include "io/json_config.hpp"
#include "models/blocks/linear.hpp"
#include "models/encoder.hpp"

namespace mmx {

// BertConfig: field names are the config.json keys, defaults are transformers' defaults.
struct BertConfig {
  int64_t vocab_size = 30522;
  int64_t hidden_size = 768;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 12;
  int64_t intermediate_size = 3072;
  std::string hidden_act = "gelu";
  int64_t max_position_embeddings = 512;
  int64_t type_vocab_size = 2;
  double layer_norm_eps = 1e-12;
  int64_t pad_token_id = 0;
  std::string position_embedding_type = "absolute";
  bool is_decoder = false;
  // RoBERTa's embeddings (models/roberta.cpp): position ids count the tokens that are not padding,
  // starting at pad_token_id + 1, and padding takes position pad_token_id.
  bool positions_after_padding_idx = false;
  std::string weight_prefix = "bert.";  // where BertFor* checkpoints keep the encoder

  // Keys absent from config.json keep the values of `defaults` (transformers' BertConfig by default).
  static BertConfig from_json(const JsonObject& json, const BertConfig& defaults);
  static BertConfig from_json(const JsonObject& json) { return from_json(json, BertConfig()); }
};

// Called with a name ("encoder.layer.3.output") and the tensor computed there, for debugging and
// layer-by-layer comparison with PyTorch forward hooks.
using TraceFn = std::function<void(const std::string& name, const Tensor& value)>;

// RoBERTa's (and MPNet's) create_position_ids_from_input_ids: padding_idx + the running count of the
// row's non-padding tokens, padding_idx at padding. [B, T] I64; a position past `table_rows` is an error.
Tensor positions_after_padding(const Tensor& input_ids, int64_t padding_idx, int64_t table_rows);

struct BertEmbeddings {
  Tensor word_embeddings, position_embeddings, token_type_embeddings;  // nn.Embedding weights
  LayerNorm norm;                                                      // "LayerNorm"
  bool absolute_positions;  // position_embedding_type == "absolute"; the table exists either way
  bool positions_after_padding_idx;
  int64_t padding_idx;
  // dropout: identity at inference
  BertEmbeddings(const WeightView& w, const BertConfig& c);
  Tensor forward(const Tensor& input_ids, const Tensor& token_type_ids) const;  // [B, T] → [B, T, C]
};

struct BertSelfAttention {
  Linear query, key, value;
  Tensor distance_embedding;  // nn.Embedding(2·max_position_embeddings − 1, head_dim), relative_key* only
  int64_t num_attention_heads;
  std::string position_embedding_type;
  bool causal;
  BertSelfAttention(const WeightView& w, const BertConfig& c);
  Tensor forward(const Tensor& hidden_states, const Tensor& attention_mask) const;
};

struct BertSelfOutput {  // dense → dropout → LayerNorm(x + input)
  Linear dense;
  LayerNorm norm;
  BertSelfOutput(const WeightView& w, const BertConfig& c);
  Tensor forward(const Tensor& hidden_states, const Tensor& input_tensor) const;
};

struct BertAttention {
  BertSelfAttention self;
  BertSelfOutput output;
  BertAttention(const WeightView& w, const BertConfig& c) : self(w.sub("self"), c), output(w.sub("output"), c) {}
  Tensor forward(const Tensor& hidden_states, const Tensor& attention_mask) const {
    return output.forward(self.forward(hidden_states, attention_mask), hidden_states);
  }
};

struct BertIntermediate {  // dense → activation
  Linear dense;
  ops::Activation act;
  BertIntermediate(const WeightView& w, const BertConfig& c);
  Tensor forward(const Tensor& hidden_states) const;
};

struct BertOutput {  // dense → dropout → LayerNorm(x + input)
  Linear dense;
  LayerNorm norm;
  BertOutput(const WeightView& w, const BertConfig& c);
  Tensor forward(const Tensor& hidden_states, const Tensor& input_tensor) const;
};

struct BertLayer {
  BertAttention attention;
  BertIntermediate intermediate;
  BertOutput output;
  BertLayer(const WeightView& w, const BertConfig& c)
      : attention(w.sub("attention"), c), intermediate(w.sub("intermediate"), c), output(w.sub("output"), c) {}
  Tensor forward(const Tensor& hidden_states, const Tensor& attention_mask) const;
};

struct BertPooler {  // dense → tanh on the first token
  Linear dense;
  BertPooler(const WeightView& w, const BertConfig& c) : dense(w.sub("dense"), c.hidden_size, c.hidden_size) {}
  Tensor forward(const Tensor& hidden_states) const;  // [B, T, C] → [B, C]
};

struct BertOutputs {
  Tensor last_hidden_state;  // [B, T, C]
  Tensor pooler_output;      // [B, C]; undefined when the checkpoint has no pooler
};

class BertModel {
 public:
  // Binds the weights of a BertModel checkpoint, or of BertForMaskedLM / BertForPreTraining /
  // BertFor* (keys under "bert." beside the task heads, which are ignored).
  BertModel(const BertConfig& config, WeightLoader& weights);
  const BertConfig& config() const { return config_; }
  bool has_pooler() const { return pooler_.has_value(); }

  // input_ids, token_type_ids (may be undefined: zeros) and attention_mask (1 = token, 0 = padding;
  // may be undefined: all tokens) are [B, T] I64.
  BertOutputs forward(const Tensor& input_ids, const Tensor& token_type_ids, const Tensor& attention_mask,
                      const TraceFn& trace = {}) const;

 private:
  BertConfig config_;
  Placement placement_;  // inputs move there, outputs come back as host F32
  std::optional<BertEmbeddings> embeddings_;
  std::vector<BertLayer> layers_;  // encoder.layer.N
  std::optional<BertPooler> pooler_;
};

// The registry's factory (models/registry.cpp): a BertModel folder as a text encoder.
std::unique_ptr<ModelParts> load_bert(const JsonObject& config, const Checkpoint& checkpoint, const Placement& placement,
                                      HalfWeights half);
// The same for a config already parsed (models/roberta.cpp sets RoBERTa's options on it).
std::unique_ptr<ModelParts> load_bert_model(const BertConfig& config, const Checkpoint& checkpoint, const Placement& placement,
                                            HalfWeights half);

}  // namespace mmx
