#include "models/distilbert.hpp"

#include "models/blocks/linear.hpp"

namespace mmx {
namespace {

// DistilBertConfig: field names are the config.json keys, defaults are transformers' defaults.
struct DistilBertConfig {
  int64_t vocab_size = 30522;
  int64_t max_position_embeddings = 512;
  int64_t n_layers = 6;
  int64_t n_heads = 12;
  int64_t dim = 768;
  int64_t hidden_dim = 3072;
  std::string activation = "gelu";
  static constexpr double kLayerNormEps = 1e-12;  // not a config key: fixed in modeling_distilbert.py

  static DistilBertConfig from_json(const JsonObject& j) {
    DistilBertConfig c;
    c.vocab_size = j.get_int("vocab_size", c.vocab_size, limits::kWidth);
    c.max_position_embeddings = j.get_int("max_position_embeddings", c.max_position_embeddings, limits::kWidth);
    c.n_layers = j.get_int("n_layers", c.n_layers, limits::kLayers);
    c.n_heads = j.get_int("n_heads", c.n_heads, limits::kHeads);
    c.dim = j.get_int("dim", c.dim, limits::kWidth);
    c.hidden_dim = j.get_int("hidden_dim", c.hidden_dim, limits::kWidth);
    c.activation = j.get_string("activation", c.activation);
    if (c.dim % c.n_heads != 0) fail(j.source(), ": dim ", c.dim, " is not a multiple of n_heads ", c.n_heads);
    ops::activation_from_name(c.activation);  // rejects unknown activations now, naming them
    return c;
  }
};

struct TransformerBlock {
  Linear q_lin, k_lin, v_lin, out_lin;  // attention.*
  LayerNorm sa_layer_norm;
  Linear lin1, lin2;  // ffn.*
  ops::Activation act;
  LayerNorm output_layer_norm;
  int64_t heads;
  TransformerBlock(const WeightView& w, const DistilBertConfig& c)
      : q_lin(w.sub("attention").sub("q_lin"), c.dim, c.dim),
        k_lin(w.sub("attention").sub("k_lin"), c.dim, c.dim),
        v_lin(w.sub("attention").sub("v_lin"), c.dim, c.dim),
        out_lin(w.sub("attention").sub("out_lin"), c.dim, c.dim),
        sa_layer_norm(w.sub("sa_layer_norm"), c.dim, DistilBertConfig::kLayerNormEps),
        lin1(w.sub("ffn").sub("lin1"), c.dim, c.hidden_dim),
        lin2(w.sub("ffn").sub("lin2"), c.hidden_dim, c.dim),
        act(ops::activation_from_name(c.activation)),
        output_layer_norm(w.sub("output_layer_norm"), c.dim, DistilBertConfig::kLayerNormEps),
        heads(c.n_heads) {}
  Tensor forward(const Tensor& x, const Tensor& mask) const {
    // softmax(q·kᵀ/sqrt(d) with padding keys hidden)·v; the residual is added inside out_lin's GEMM
    const Tensor context = ops::attention(q_lin.forward(x), k_lin.forward(x), v_lin.forward(x), heads, mask, false);
    const Tensor sa_output = sa_layer_norm.forward(out_lin.forward(context, {x, ops::Activation::Identity}));
    const Tensor hidden = lin1.forward(sa_output, {Tensor(), act});
    return output_layer_norm.forward(lin2.forward(hidden, {sa_output, ops::Activation::Identity}));
  }
};

class DistilBertParts final : public ModelParts, public TextEncoder {
 public:
  DistilBertParts(const DistilBertConfig& config, WeightLoader& weights)
      : config_(config), placement_(weights.placement()) {
    // DistilBertFor* checkpoints keep the encoder under "distilbert."; transformers strips that prefix.
    const WeightView root(weights, weights.has_prefix("distilbert.") ? "distilbert." : "");
    const WeightView e = root.sub("embeddings");
    word_embeddings_ = e.sub("word_embeddings").get_embedding("weight", {config.vocab_size, config.dim});
    position_embeddings_ =
        e.sub("position_embeddings").get_embedding("weight", {config.max_position_embeddings, config.dim});
    embeddings_norm_ = LayerNorm(e.sub("LayerNorm"), config.dim, DistilBertConfig::kLayerNormEps);
    for (int64_t i = 0; i < config.n_layers; ++i) layers_.emplace_back(root.sub("transformer").sub("layer", i), config);
    weights.finish(
        "DistilBertModel", {"position_ids"},
        {"vocab_transform.", "vocab_layer_norm.", "vocab_projector.", "pre_classifier.", "classifier.", "qa_outputs."});
  }
  const TextEncoder* text() const override { return this; }
  std::string description() const override {
    return str("distilbert: ", config_.n_layers, " layers, dim ", config_.dim, ", ", config_.n_heads, " heads, hidden ",
               config_.hidden_dim, ", ", config_.activation);
  }
  EncoderOutputs forward(const Tensor& input_ids, const Tensor&, const Tensor& attention_mask,
                         bool output_hidden_states) const override {
    const int64_t seq = input_ids.dim(1);
    if (seq > config_.max_position_embeddings)
      throw Error(
          ErrorKind::Runtime,
          str("sequence of ", seq, " tokens is longer than max_position_embeddings ", config_.max_position_embeddings),
          "truncate the text (--max-length)");
    const Tensor mask = placement_.in(attention_mask);
    Tensor x = ops::embedding(word_embeddings_, input_ids);  // [B, T, C]
    ops::add_(x, position_embeddings_.narrow0(0, seq));      // positions 0..T-1
    x = embeddings_norm_.forward(x);
    EncoderOutputs out;
    if (output_hidden_states) out.hidden_states.push_back(placement_.out(x));
    for (const auto& layer : layers_) {
      x = layer.forward(x, mask);
      if (output_hidden_states) out.hidden_states.push_back(placement_.out(x));
    }
    out.last_hidden_state = placement_.out(x);
    return out;
  }
  int64_t max_positions() const override { return config_.max_position_embeddings; }
  bool has_pooler() const override { return false; }

 private:
  DistilBertConfig config_;
  Placement placement_;
  Tensor word_embeddings_, position_embeddings_;
  LayerNorm embeddings_norm_;
  std::vector<TransformerBlock> layers_;  // transformer.layer.N
};

}  // namespace

std::unique_ptr<ModelParts> load_distilbert(const JsonObject& config, const Checkpoint& checkpoint,
                                            const Placement& placement, HalfWeights half) {
  return load_parts<DistilBertParts, DistilBertConfig>(config, checkpoint, placement, half);
}

}  // namespace mmx
