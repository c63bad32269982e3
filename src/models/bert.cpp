#include "models/bert.hpp"

#include <cmath>

#include "core/log.hpp"

namespace mmx {

BertConfig BertConfig::from_json(const JsonObject& j, const BertConfig& defaults) {
  BertConfig c = defaults;
  c.vocab_size = j.get_int("vocab_size", c.vocab_size, limits::kWidth);
  c.hidden_size = j.get_int("hidden_size", c.hidden_size, limits::kWidth);
  c.num_hidden_layers = j.get_int("num_hidden_layers", c.num_hidden_layers, limits::kLayers);
  c.num_attention_heads = j.get_int("num_attention_heads", c.num_attention_heads, limits::kHeads);
  c.intermediate_size = j.get_int("intermediate_size", c.intermediate_size, limits::kWidth);
  c.hidden_act = j.get_string("hidden_act", c.hidden_act);
  c.max_position_embeddings = j.get_int("max_position_embeddings", c.max_position_embeddings, limits::kWidth);
  c.type_vocab_size = j.get_int("type_vocab_size", c.type_vocab_size, {0, 1 << 16, "a handful of token types (two for BERT)"});
  c.layer_norm_eps = j.get_float("layer_norm_eps", c.layer_norm_eps, limits::kEpsilon);
  c.pad_token_id = j.get_int("pad_token_id", c.pad_token_id);
  c.position_embedding_type = j.get_string("position_embedding_type", c.position_embedding_type);
  c.is_decoder = j.get_bool("is_decoder", c.is_decoder);
  if (c.hidden_size % c.num_attention_heads != 0)
    fail(j.source(), ": hidden_size ", c.hidden_size, " is not a multiple of num_attention_heads ",
         c.num_attention_heads);
  if (c.position_embedding_type != "absolute" && c.position_embedding_type != "relative_key" &&
      c.position_embedding_type != "relative_key_query")
    log_warn(j.source(), ": position_embedding_type '", c.position_embedding_type,
             "' is neither absolute nor relative: like transformers, the model gets no position information");
  ops::activation_from_name(c.hidden_act);  // rejects unknown activations now, naming them
  return c;
}

BertEmbeddings::BertEmbeddings(const WeightView& w, const BertConfig& c)
    : word_embeddings(w.sub("word_embeddings").get_embedding("weight", {c.vocab_size, c.hidden_size})),
      position_embeddings(w.sub("position_embeddings").get_embedding("weight", {c.max_position_embeddings, c.hidden_size})),
      token_type_embeddings(c.type_vocab_size > 0
                                ? w.sub("token_type_embeddings").get_embedding("weight", {c.type_vocab_size, c.hidden_size})
                                : Tensor()),
      norm(w.sub("LayerNorm"), c.hidden_size, c.layer_norm_eps),
      absolute_positions(c.position_embedding_type == "absolute"),
      positions_after_padding_idx(c.positions_after_padding_idx),
      padding_idx(c.pad_token_id) {}

// RoBERTa's create_position_ids_from_input_ids: padding_idx + the running count of non-padding tokens,
// padding_idx itself at padding. [B, T] I64.
Tensor positions_after_padding(const Tensor& input_ids, int64_t padding_idx, int64_t table_rows) {
  Tensor positions = Tensor::empty(input_ids.shape(), DType::I64);
  const Tensor ids = input_ids.to(Device::cpu());
  const int64_t batch = ids.dim(0), seq = ids.dim(1);
  const int64_t* in = ids.data<int64_t>();
  int64_t* out = positions.data<int64_t>();
  for (int64_t b = 0; b < batch; ++b) {
    int64_t count = 0;
    for (int64_t t = 0; t < seq; ++t) {
      const int64_t i = b * seq + t;
      out[i] = in[i] == padding_idx ? padding_idx : padding_idx + ++count;
      if (out[i] >= table_rows)
        throw Error(ErrorKind::Runtime,
                    str("sequence of ", seq, " tokens needs position ", out[i], ", beyond max_position_embeddings ",
                        table_rows, " (positions start after padding_idx ", padding_idx, ")"),
                    "truncate the text (--max-length)");
    }
  }
  return positions.to(input_ids.device());
}


Tensor BertEmbeddings::forward(const Tensor& input_ids, const Tensor& token_type_ids) const {
  const int64_t batch = input_ids.dim(0), seq = input_ids.dim(1);
  if (!positions_after_padding_idx && seq > position_embeddings.dim(0))
    throw Error(ErrorKind::Runtime,
                str("sequence of ", seq, " tokens is longer than max_position_embeddings ", position_embeddings.dim(0)),
                "truncate the text (--max-length)");
  Tensor embeddings = ops::embedding(word_embeddings, input_ids);  // [B, T, C]
  if (token_type_embeddings.defined()) {
    const Tensor types = token_type_ids.defined() ? token_type_ids : Tensor::zeros({batch, seq}, DType::I64);
    ops::add_(embeddings, ops::embedding(token_type_embeddings, types));  // inputs_embeds + token_type_embeddings
  }
  if (absolute_positions && positions_after_padding_idx) {
    ops::add_(embeddings,
              ops::embedding(position_embeddings, positions_after_padding(input_ids, padding_idx, position_embeddings.dim(0))));
  } else if (absolute_positions) {
    // positions 0..T-1: the first T rows of the table, broadcast over the batch
    ops::add_(embeddings, position_embeddings.narrow0(0, seq));
  }
  return norm.forward(embeddings);
}

BertSelfAttention::BertSelfAttention(const WeightView& w, const BertConfig& c)
    : query(w.sub("query"), c.hidden_size, c.hidden_size),
      key(w.sub("key"), c.hidden_size, c.hidden_size),
      value(w.sub("value"), c.hidden_size, c.hidden_size),
      distance_embedding(c.position_embedding_type == "relative_key" || c.position_embedding_type == "relative_key_query"
                             ? w.sub("distance_embedding").get_host("weight", {2 * c.max_position_embeddings - 1,
                                                                               c.hidden_size / c.num_attention_heads})
                             : Tensor()),
      num_attention_heads(c.num_attention_heads),
      position_embedding_type(c.position_embedding_type),
      causal(c.is_decoder) {}

namespace {

// Relative-position scores of transformers' "relative_key" / "relative_key_query", already divided by
// sqrt(head_dim): bias[b, h, l, r] = (q_l · E[l − r + max − 1] (+ k_r · E[l − r + max − 1])) / sqrt(d).
// The rows of E for distances −(T−1)…T−1 are contiguous, so each (b, h) is one or two GEMMs
// [T, d]·[d, 2T−1] followed by a diagonal gather.
Tensor relative_position_bias(const Tensor& q, const Tensor& k, const Tensor& distance_embedding, int64_t heads,
                              bool with_key) {
  const int64_t batch = q.dim(0), seq = q.dim(1), c = q.dim(2), d = c / heads;
  const int64_t max_positions = (distance_embedding.dim(0) + 1) / 2, span = 2 * seq - 1;
  if (seq > max_positions) fail("BertSelfAttention: ", seq, " tokens exceed max_position_embeddings ", max_positions);
  const float* table = distance_embedding.data<float>() + (max_positions - seq) * d;  // distance −(T−1)
  Tensor bias = Tensor::zeros({batch, heads, seq, seq});
  Tensor scores = Tensor::empty({seq, span});
  const float scale = 1.f / std::sqrt(static_cast<float>(d));
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t h = 0; h < heads; ++h) {
      float* out = bias.data<float>() + (b * heads + h) * seq * seq;
      for (const Tensor* x : {&q, &k}) {
        if (x == &k && !with_key) break;
        ops::gemm(false, true, seq, span, d, scale, x->data<float>() + b * seq * c + h * d, c, table, d, 0.f,
                  scores.data<float>(), span);
        const float* s = scores.data<float>();
        for (int64_t l = 0; l < seq; ++l)
          for (int64_t r = 0; r < seq; ++r)  // distance l − r; the query term is indexed by l, the key term by r
            out[l * seq + r] += x == &q ? s[l * span + (l - r + seq - 1)] : s[r * span + (l - r + seq - 1)];
      }
    }
  return bias;
}

}  // namespace

Tensor BertSelfAttention::forward(const Tensor& hidden_states, const Tensor& attention_mask) const {
  const Tensor q = query.forward(hidden_states);  // [B, T, heads·head_dim]
  const Tensor k = key.forward(hidden_states);
  const Tensor v = value.forward(hidden_states);
  Tensor bias;  // [B, heads, T, T] for relative position types
  if (distance_embedding.defined()) {
    // Computed on the host (strided GEMMs and a diagonal gather) and moved to the device if needed.
    const Device device = q.device();
    const auto host = [](const Tensor& t) { return t.to(DType::F32).to(Device::cpu()); };
    bias = relative_position_bias(host(q), host(k), distance_embedding, num_attention_heads,
                                  position_embedding_type == "relative_key_query")
               .to(device);
  }
  // softmax(q·kᵀ/sqrt(head_dim) + bias + mask)·v with padding keys hidden; dropout is identity
  return ops::attention(q, k, v, num_attention_heads, attention_mask, causal, bias);  // [B, T, C]
}

BertSelfOutput::BertSelfOutput(const WeightView& w, const BertConfig& c)
    : dense(w.sub("dense"), c.hidden_size, c.hidden_size), norm(w.sub("LayerNorm"), c.hidden_size, c.layer_norm_eps) {}

Tensor BertSelfOutput::forward(const Tensor& hidden_states, const Tensor& input_tensor) const {
  // dense(hidden_states) + input_tensor, the residual added to each output tile inside the GEMM
  return norm.forward(dense.forward(hidden_states, {input_tensor, ops::Activation::Identity}));
}

BertIntermediate::BertIntermediate(const WeightView& w, const BertConfig& c)
    : dense(w.sub("dense"), c.hidden_size, c.intermediate_size), act(ops::activation_from_name(c.hidden_act)) {}

Tensor BertIntermediate::forward(const Tensor& hidden_states) const {
  Tensor x = dense.forward(hidden_states, {Tensor(), act});  // [B, T, intermediate], activation fused
  return x;
}

BertOutput::BertOutput(const WeightView& w, const BertConfig& c)
    : dense(w.sub("dense"), c.intermediate_size, c.hidden_size),
      norm(w.sub("LayerNorm"), c.hidden_size, c.layer_norm_eps) {}

Tensor BertOutput::forward(const Tensor& hidden_states, const Tensor& input_tensor) const {
  // dense(hidden_states) + input_tensor, the residual added to each output tile inside the GEMM
  return norm.forward(dense.forward(hidden_states, {input_tensor, ops::Activation::Identity}));
}

Tensor BertLayer::forward(const Tensor& hidden_states, const Tensor& attention_mask) const {
  const Tensor attention_output = attention.forward(hidden_states, attention_mask);
  return output.forward(intermediate.forward(attention_output), attention_output);
}

Tensor BertPooler::forward(const Tensor& hidden_states) const {
  const Tensor first = ops::select_tokens(hidden_states, std::vector<int64_t>(size_t(hidden_states.dim(0)), 0));
  Tensor pooled = dense.forward(first);  // dense(hidden_states[:, 0])
  ops::activation_(pooled, ops::Activation::Tanh);
  return pooled;
}

BertModel::BertModel(const BertConfig& config, WeightLoader& weights) : config_(config), placement_(weights.placement()) {
  // A checkpoint of BertFor* keeps the encoder under "bert." ("roberta." …); transformers strips that prefix.
  const WeightView root(weights, weights.has_prefix(config_.weight_prefix) ? config_.weight_prefix : "");
  embeddings_.emplace(root.sub("embeddings"), config_);
  layers_.reserve(static_cast<size_t>(config_.num_hidden_layers));
  for (int64_t i = 0; i < config_.num_hidden_layers; ++i) layers_.emplace_back(root.sub("encoder").sub("layer", i), config_);
  // transformers would initialise a missing pooler at random (a different one on every load);
  // mmx instead has no pooler, and asking for pooler_output is an error.
  if (root.has("pooler.dense.weight") || root.has("pooler.dense.bias")) pooler_.emplace(root.sub("pooler"), config_);
  else log_info("checkpoint has no pooler (pooler.dense.*): pooler_output is unavailable");
  weights.finish(config_.positions_after_padding_idx ? "RobertaModel" : "BertModel", {"position_ids"},
                 {"cls.", "classifier.", "qa_outputs.", "lm_head."});
}

BertOutputs BertModel::forward(const Tensor& input_ids, const Tensor& token_type_ids, const Tensor& attention_mask,
                               const TraceFn& trace) const {
  if (input_ids.ndim() != 2 || input_ids.dtype() != DType::I64)
    fail("BertModel: input_ids must be I64 [batch, seq], got ", dtype_name(input_ids.dtype()), " ",
         shape_str(input_ids.shape()));
  for (const Tensor* t : {&token_type_ids, &attention_mask})
    if (t->defined() && (t->shape() != input_ids.shape() || t->dtype() != DType::I64))
      fail("BertModel: token_type_ids / attention_mask must be I64 ", shape_str(input_ids.shape()));
  const Tensor mask = placement_.in(attention_mask);
  Tensor hidden_states = embeddings_->forward(input_ids, token_type_ids);  // [B, T, C]
  if (trace) trace("embeddings", placement_.out(hidden_states));
  for (size_t i = 0; i < layers_.size(); ++i) {
    hidden_states = layers_[i].forward(hidden_states, mask);
    if (trace) trace(str("encoder.layer.", i), placement_.out(hidden_states));
  }
  BertOutputs out;
  out.last_hidden_state = placement_.out(hidden_states);
  if (pooler_) out.pooler_output = placement_.out(pooler_->forward(hidden_states));
  return out;
}

namespace {

class BertParts final : public ModelParts, public TextEncoder {
 public:
  BertParts(const BertConfig& config, WeightLoader& weights) : model_(config, weights) {}
  const TextEncoder* text() const override { return this; }
  std::string description() const override {
    const auto& c = model_.config();
    return str(c.positions_after_padding_idx ? "roberta: " : "bert: ", c.num_hidden_layers, " layers, hidden ",
               c.hidden_size, ", ", c.num_attention_heads, " heads, intermediate ", c.intermediate_size, ", ", c.hidden_act);
  }
  EncoderOutputs forward(const Tensor& input_ids, const Tensor& token_type_ids, const Tensor& attention_mask,
                         bool output_hidden_states) const override {
    EncoderOutputs out;
    TraceFn trace;  // embeddings, then every layer's output: transformers' hidden_states
    if (output_hidden_states) trace = [&out](const std::string&, const Tensor& t) { out.hidden_states.push_back(t); };
    BertOutputs o = model_.forward(input_ids, token_type_ids, attention_mask, trace);
    out.last_hidden_state = o.last_hidden_state;
    out.pooler_output = o.pooler_output;
    return out;
  }
  // RoBERTa's rows 0 … padding_idx are not token positions (514 rows: 512 tokens).
  int64_t max_positions() const override {
    const auto& c = model_.config();
    return c.positions_after_padding_idx ? c.max_position_embeddings - c.pad_token_id - 1 : c.max_position_embeddings;
  }
  bool has_pooler() const override { return model_.has_pooler(); }

 private:
  BertModel model_;
};

}  // namespace

std::unique_ptr<ModelParts> load_bert(const JsonObject& config, const Checkpoint& checkpoint, const Placement& placement,
                                      HalfWeights half) {
  return load_parts<BertParts, BertConfig>(config, checkpoint, placement, half);
}

std::unique_ptr<ModelParts> load_bert_model(const BertConfig& config, const Checkpoint& checkpoint, const Placement& placement,
                                            HalfWeights half) {
  WeightLoader loader(checkpoint, placement, half);
  return std::make_unique<BertParts>(config, loader);
}

}  // namespace mmx
