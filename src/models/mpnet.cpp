#include "models/mpnet.hpp"

#include <cmath>

#include "models/bert.hpp"
#include "models/blocks/linear.hpp"

namespace mmx {
namespace {

// MPNetConfig: BERT's keys (hidden_size, num_hidden_layers, …, layer_norm_eps) with MPNetConfig's
// defaults, and relative_attention_num_buckets.
struct MPNetConfig : BertConfig {
  int64_t relative_attention_num_buckets = 32;
  static constexpr int64_t kPaddingIdx = 1;  // MPNetEmbeddings fixes it, whatever pad_token_id says
  static constexpr int64_t kBuckets = 32;    // compute_position_bias always buckets into 32

  static MPNetConfig from_json(const JsonObject& j) {
    BertConfig defaults;
    defaults.vocab_size = 30527;
    defaults.pad_token_id = 1;
    MPNetConfig c;
    static_cast<BertConfig&>(c) = BertConfig::from_json(j, defaults);
    c.relative_attention_num_buckets =
        j.get_int("relative_attention_num_buckets", c.relative_attention_num_buckets, limits::kWidth);
    if (c.relative_attention_num_buckets < kBuckets)
      fail(j.source(), ": relative_attention_num_buckets ", c.relative_attention_num_buckets,
           " is fewer than the 32 buckets MPNetEncoder.compute_position_bias indexes");
    if (c.max_position_embeddings <= kPaddingIdx + 1)
      fail(j.source(), ": max_position_embeddings ", c.max_position_embeddings,
           " leaves no position after padding_idx 1");
    return c;
  }
};

struct MPNetLayer {
  Linear q, k, v, o;         // attention.attn.*
  LayerNorm attention_norm;  // attention.LayerNorm
  Linear intermediate;       // intermediate.dense
  ops::Activation act;
  Linear output;          // output.dense
  LayerNorm output_norm;  // output.LayerNorm
  int64_t heads;
  MPNetLayer(const WeightView& w, const MPNetConfig& c)
      : q(w.sub("attention").sub("attn").sub("q"), c.hidden_size, c.hidden_size),
        k(w.sub("attention").sub("attn").sub("k"), c.hidden_size, c.hidden_size),
        v(w.sub("attention").sub("attn").sub("v"), c.hidden_size, c.hidden_size),
        o(w.sub("attention").sub("attn").sub("o"), c.hidden_size, c.hidden_size),
        attention_norm(w.sub("attention").sub("LayerNorm"), c.hidden_size, c.layer_norm_eps),
        intermediate(w.sub("intermediate").sub("dense"), c.hidden_size, c.intermediate_size),
        act(ops::activation_from_name(c.hidden_act)),
        output(w.sub("output").sub("dense"), c.intermediate_size, c.hidden_size),
        output_norm(w.sub("output").sub("LayerNorm"), c.hidden_size, c.layer_norm_eps),
        heads(c.num_attention_heads) {}
  Tensor forward(const Tensor& x, const Tensor& mask, const Tensor& position_bias) const {
    // softmax(q·kᵀ/sqrt(d) + position_bias + mask)·v; residuals added inside the GEMMs
    const Tensor c = ops::attention(q.forward(x), k.forward(x), v.forward(x), heads, mask, false, position_bias);
    const Tensor attention_output = attention_norm.forward(o.forward(c, {x, ops::Activation::Identity}));
    const Tensor h = intermediate.forward(attention_output, {Tensor(), act});
    return output_norm.forward(output.forward(h, {attention_output, ops::Activation::Identity}));
  }
};

class MPNetParts final : public ModelParts, public TextEncoder {
 public:
  MPNetParts(const MPNetConfig& config, WeightLoader& weights) : config_(config), placement_(weights.placement()) {
    // MPNetFor* checkpoints keep the encoder under "mpnet."; transformers strips that prefix.
    const WeightView root(weights, weights.has_prefix("mpnet.") ? "mpnet." : "");
    const WeightView e = root.sub("embeddings");
    word_embeddings_ = e.sub("word_embeddings").get_embedding("weight", {config.vocab_size, config.hidden_size});
    position_embeddings_ =
        e.sub("position_embeddings").get_embedding("weight", {config.max_position_embeddings, config.hidden_size});
    embeddings_norm_ = LayerNorm(e.sub("LayerNorm"), config.hidden_size, config.layer_norm_eps);
    for (int64_t i = 0; i < config.num_hidden_layers; ++i)
      layers_.emplace_back(root.sub("encoder").sub("layer", i), config);
    relative_attention_bias_ =
        root.sub("encoder")
            .sub("relative_attention_bias")
            .get_host("weight", {config.relative_attention_num_buckets, config.num_attention_heads});
    if (root.has("pooler.dense.weight") || root.has("pooler.dense.bias")) pooler_.emplace(root.sub("pooler"), config);
    weights.finish("MPNetModel", {"position_ids"}, {"lm_head.", "classifier."});
  }
  const TextEncoder* text() const override { return this; }
  std::string description() const override {
    return str("mpnet: ", config_.num_hidden_layers, " layers, hidden ", config_.hidden_size, ", ",
               config_.num_attention_heads, " heads, intermediate ", config_.intermediate_size, ", ",
               config_.hidden_act);
  }
  EncoderOutputs forward(const Tensor& input_ids, const Tensor&, const Tensor& attention_mask,
                         bool output_hidden_states) const override {
    const Tensor mask = placement_.in(attention_mask);
    Tensor x = ops::embedding(word_embeddings_, input_ids);  // [B, T, C]
    ops::add_(x, ops::embedding(position_embeddings_, positions_after_padding(input_ids, MPNetConfig::kPaddingIdx,
                                                                              config_.max_position_embeddings)));
    x = embeddings_norm_.forward(x);
    const Tensor bias = placement_.in(position_bias(input_ids.dim(0), input_ids.dim(1)));
    EncoderOutputs out;
    if (output_hidden_states) out.hidden_states.push_back(placement_.out(x));
    for (const auto& layer : layers_) {
      x = layer.forward(x, mask, bias);
      if (output_hidden_states) out.hidden_states.push_back(placement_.out(x));
    }
    out.last_hidden_state = placement_.out(x);
    if (pooler_) out.pooler_output = placement_.out(pooler_->forward(x));  // MPNetPooler is BertPooler
    return out;
  }
  int64_t max_positions() const override { return config_.max_position_embeddings - MPNetConfig::kPaddingIdx - 1; }
  bool has_pooler() const override { return pooler_.has_value(); }

 private:
  // [B, heads, T, T]: bias[h][i][j] = relative_attention_bias[bucket(j − i)][h], the same for every row.
  Tensor position_bias(int64_t batch, int64_t seq) const {
    const int64_t heads = config_.num_attention_heads;
    std::vector<int64_t> bucket(size_t(2 * seq - 1));  // by distance j − i + T − 1
    for (int64_t d = 0; d < 2 * seq - 1; ++d) bucket[size_t(d)] = mpnet_relative_position_bucket(d - (seq - 1));
    Tensor bias = Tensor::empty({batch, heads, seq, seq});
    const float* table = relative_attention_bias_.data<float>();
    float* out = bias.data<float>();
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < seq; ++i)
        for (int64_t j = 0; j < seq; ++j)
          out[(h * seq + i) * seq + j] = table[bucket[size_t(j - i + seq - 1)] * heads + h];
    for (int64_t b = 1; b < batch; ++b) std::copy(out, out + heads * seq * seq, out + b * heads * seq * seq);
    return bias;
  }

  MPNetConfig config_;
  Placement placement_;
  Tensor word_embeddings_, position_embeddings_, relative_attention_bias_;
  LayerNorm embeddings_norm_;
  std::vector<MPNetLayer> layers_;  // encoder.layer.N
  std::optional<BertPooler> pooler_;
};

}  // namespace

int64_t mpnet_relative_position_bucket(int64_t relative_position, int64_t num_buckets, int64_t max_distance) {
  int64_t n = -relative_position;
  num_buckets /= 2;
  int64_t ret = n < 0 ? num_buckets : 0;
  n = n < 0 ? -n : n;
  const int64_t max_exact = num_buckets / 2;
  if (n < max_exact) return ret + n;
  // torch: log(n.float() / max_exact) / math.log(max_distance / max_exact) * (num_buckets − max_exact),
  // all in float32 (the Python scalars are rounded to float), truncated toward zero.
  const float ratio = static_cast<float>(n) / static_cast<float>(max_exact);
  const float scale = static_cast<float>(std::log(static_cast<double>(max_distance) / static_cast<double>(max_exact)));
  const float large = std::log(ratio) / scale * static_cast<float>(num_buckets - max_exact);
  const int64_t val = std::min<int64_t>(max_exact + static_cast<int64_t>(large), num_buckets - 1);
  return ret + val;
}

std::unique_ptr<ModelParts> load_mpnet(const JsonObject& config, const Checkpoint& checkpoint,
                                       const Placement& placement, HalfWeights half) {
  return load_parts<MPNetParts, MPNetConfig>(config, checkpoint, placement, half);
}

}  // namespace mmx
