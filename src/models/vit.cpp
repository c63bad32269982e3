#include "models/vit.hpp"

#include <cstring>

#include "core/log.hpp"

namespace mmx {

namespace {
// "image_size" / "patch_size": an int, or [height, width].
void read_pair(const JsonObject& j, const std::string& key, int64_t& h, int64_t& w) {
  if (!j.has(key)) return;
  const auto& v = j.json().at(key);
  if (v.is_number_integer()) {
    h = w = j.int_element(key, v, limits::kImageSide);
  } else if (v.is_array() && v.size() == 2 && v[0].is_number_integer() && v[1].is_number_integer()) {
    h = j.int_element(key, v[0], limits::kImageSide);
    w = j.int_element(key, v[1], limits::kImageSide);
  } else {
    fail(j.source(), ": key '", key, "': expected an integer or [height, width], found ", v.dump());
  }
}
}  // namespace

ViTConfig ViTConfig::from_json(const JsonObject& j) {
  ViTConfig c;
  c.hidden_size = j.get_int("hidden_size", c.hidden_size, limits::kWidth);
  c.num_hidden_layers = j.get_int("num_hidden_layers", c.num_hidden_layers, limits::kLayers);
  c.num_attention_heads = j.get_int("num_attention_heads", c.num_attention_heads, limits::kHeads);
  c.intermediate_size = j.get_int("intermediate_size", c.intermediate_size, limits::kWidth);
  c.hidden_act = j.get_string("hidden_act", c.hidden_act);
  c.layer_norm_eps = j.get_float("layer_norm_eps", c.layer_norm_eps, limits::kEpsilon);
  read_pair(j, "image_size", c.image_height, c.image_width);
  read_pair(j, "patch_size", c.patch_height, c.patch_width);
  c.num_channels = j.get_int("num_channels", c.num_channels, limits::kImageChannels);
  c.qkv_bias = j.get_bool("qkv_bias", c.qkv_bias);
  c.pooler_output_size = j.get_int("pooler_output_size", c.hidden_size, limits::kWidth);
  c.pooler_act = j.get_string("pooler_act", c.pooler_act);
  if (c.hidden_size % c.num_attention_heads != 0)
    fail(j.source(), ": hidden_size ", c.hidden_size, " is not a multiple of num_attention_heads ", c.num_attention_heads);
  if (c.image_height < c.patch_height || c.image_width < c.patch_width)
    fail(j.source(), ": image_size is smaller than patch_size");
  ops::activation_from_name(c.hidden_act);
  ops::activation_from_name(c.pooler_act);
  if (j.has("id2label")) {
    const auto& labels = j.json().at("id2label");
    if (!labels.is_object()) fail(j.source(), ": key 'id2label' must be an object {\"0\": \"label\", ...}");
    for (auto it = labels.begin(); it != labels.end(); ++it) {
      char* end = nullptr;
      const long long id = std::strtoll(it.key().c_str(), &end, 10);
      if (*end != '\0' || !it.value().is_string()) fail(j.source(), ": id2label entry '", it.key(), "' is not id → label");
      c.id2label[id] = it.value().get<std::string>();
    }
  }
  return c;
}

ViTEmbeddings::ViTEmbeddings(const WeightView& w, const ViTConfig& c)
    : cls_token(w.get_embedding("cls_token", {1, 1, c.hidden_size})),
      position_embeddings(w.get_embedding("position_embeddings", {1, c.num_patches() + 1, c.hidden_size})),
      config(&c) {
  // The Conv2d weight [C, channels, ph, pw] is, read row by row, the [C, channels·ph·pw] matrix of
  // a Linear over flattened patches: the convolution with stride = kernel is one GEMM.
  const WeightView p = w.sub("patch_embeddings").sub("projection");
  const int64_t k = c.num_channels * c.patch_height * c.patch_width;
  patch_projection.weight = p.get_matrix("weight", {c.hidden_size, c.num_channels, c.patch_height, c.patch_width})
                                .reshape({c.hidden_size, k});
  patch_projection.bias = p.get("bias", {c.hidden_size}, Init::Zeros);
}

Tensor ViTEmbeddings::forward(const Tensor& pixel_values) const {
  const ViTConfig& c = *config;
  if (pixel_values.ndim() != 4 || pixel_values.dim(1) != c.num_channels)
    fail("ViT: pixel_values must be [batch, ", c.num_channels, ", height, width], got ", shape_str(pixel_values.shape()));
  const int64_t height = pixel_values.dim(2), width = pixel_values.dim(3);
  if (height != c.image_height || width != c.image_width)
    throw Error(ErrorKind::Runtime,
                str("ViT: input image size (", height, "*", width, ") doesn't match model (", c.image_height, "*",
                    c.image_width, ")"),
                "the image processor's size must equal the model's image_size");
  // The patch embedding (Conv2d with kernel = stride = patch) as one GEMM over the flattened patches.
  const Tensor patch_embeds = patch_projection.forward(ops::patchify(pixel_values, c.patch_height, c.patch_width));
  const int64_t n = patch_embeds.dim(1), hidden = c.hidden_size;
  Tensor embeddings = ops::concat1(cls_token, patch_embeds);  // cat([CLS], patches): [B, N + 1, C]
  ops::add_(embeddings, position_embeddings.reshape({n + 1, hidden}));  // + position_embeddings; dropout: identity
  return embeddings;
}

ViTLayer::ViTLayer(const WeightView& w, const ViTConfig& c)
    : layernorm_before(w.sub("layernorm_before"), c.hidden_size, c.layer_norm_eps),
      layernorm_after(w.sub("layernorm_after"), c.hidden_size, c.layer_norm_eps),
      query(w.sub("attention").sub("attention").sub("query"), c.hidden_size, c.hidden_size, c.qkv_bias),
      key(w.sub("attention").sub("attention").sub("key"), c.hidden_size, c.hidden_size, c.qkv_bias),
      value(w.sub("attention").sub("attention").sub("value"), c.hidden_size, c.hidden_size, c.qkv_bias),
      attention_output(w.sub("attention").sub("output").sub("dense"), c.hidden_size, c.hidden_size),
      intermediate(w.sub("intermediate").sub("dense"), c.hidden_size, c.intermediate_size),
      output(w.sub("output").sub("dense"), c.intermediate_size, c.hidden_size),
      act(ops::activation_from_name(c.hidden_act)),
      heads(c.num_attention_heads) {}

Tensor ViTLayer::forward(const Tensor& hidden_states) const {
  const Tensor normed = layernorm_before.forward(hidden_states);  // pre-norm
  const Tensor context = ops::attention(query.forward(normed), key.forward(normed), value.forward(normed), heads,
                                        Tensor(), false);  // [B, T, C]
  // The residuals and the MLP's activation are applied inside the GEMMs, tile by tile.
  const Tensor attention_out = attention_output.forward(context, {hidden_states, ops::Activation::Identity});
  const Tensor mlp = intermediate.forward(layernorm_after.forward(attention_out), {Tensor(), act});
  Tensor layer_output = output.forward(mlp, {attention_out, ops::Activation::Identity});
  return layer_output;
}

ViTModel::ViTModel(const ViTConfig& config, const WeightView& root, bool load_pooler)
    : config_(config), placement_(root.placement()) {
  embeddings_.emplace(root.sub("embeddings"), config_);
  for (int64_t i = 0; i < config_.num_hidden_layers; ++i) layers_.emplace_back(root.sub("encoder").sub("layer", i), config_);
  layernorm_ = LayerNorm(root.sub("layernorm"), config_.hidden_size, config_.layer_norm_eps);
  pooler_act_ = ops::activation_from_name(config_.pooler_act);
  // google/vit-base-patch16-224 is a classifier checkpoint without pooler weights; transformers would
  // initialise a random pooler on every load. mmx has none then, and pooler_output is an error.
  if (load_pooler && (root.has("pooler.dense.weight") || root.has("pooler.dense.bias")))
    pooler_.emplace(root.sub("pooler").sub("dense"), config_.hidden_size, config_.pooler_output_size);
  else if (load_pooler)
    log_info("checkpoint has no pooler (pooler.dense.*): pooler_output is unavailable");
}

ViTModel::ViTModel(const ViTConfig& config, WeightLoader& weights)
    : ViTModel(config, WeightView(weights, weights.has_prefix("vit.") ? "vit." : ""), true) {
  weights.finish("ViTModel", {}, {"classifier."});
}

ViTOutputs ViTModel::forward(const Tensor& pixel_values) const {
  ViTOutputs out = forward_on_device(pixel_values);
  out.last_hidden_state = placement_.out(out.last_hidden_state);
  out.pooler_output = placement_.out(out.pooler_output);
  return out;
}

ViTOutputs ViTModel::forward_on_device(const Tensor& pixel_values) const {
  Tensor hidden_states = embeddings_->forward(placement_.in(pixel_values));  // [B, T, C]
  for (const auto& layer : layers_) hidden_states = layer.forward(hidden_states);
  ViTOutputs out;
  out.last_hidden_state = layernorm_.forward(hidden_states);
  if (pooler_) {
    const Tensor first = ops::select_tokens(out.last_hidden_state,  // hidden_states[:, 0]
                                            std::vector<int64_t>(size_t(out.last_hidden_state.dim(0)), 0));
    out.pooler_output = pooler_->forward(first);
    ops::activation_(out.pooler_output, pooler_act_);
  }
  return out;
}

ViTForImageClassification::ViTForImageClassification(const ViTConfig& config, WeightLoader& weights)
    : vit_(config, WeightView(weights, "vit."), true),
      classifier(WeightView(weights, "classifier."), config.hidden_size,
                 config.id2label.empty() ? 2 : static_cast<int64_t>(config.id2label.size())) {
  weights.finish("ViTForImageClassification");
}

Tensor ViTForImageClassification::forward(const Tensor& pixel_values) const {
  const ViTOutputs out = vit_.forward_on_device(pixel_values);
  const Tensor first = ops::select_tokens(out.last_hidden_state,  // sequence_output[:, 0, :]
                                          std::vector<int64_t>(size_t(out.last_hidden_state.dim(0)), 0));
  return vit_.placement().out(classifier.forward(first));
}

namespace {

std::string describe(const ViTConfig& c) {
  return str("vit: ", c.num_hidden_layers, " layers, hidden ", c.hidden_size, ", ", c.num_attention_heads, " heads, image ",
             c.image_height, "×", c.image_width, ", patch ", c.patch_height, "×", c.patch_width);
}

class ViTVision : public VisionEncoder {
 public:
  const ViTModel& vit() const { return classifier_ ? classifier_->vit() : *model_; }
  EncoderOutputs forward(const Tensor& pixel_values) const override {
    ViTOutputs o = vit().forward(pixel_values);
    return {o.last_hidden_state, o.pooler_output, {}};
  }
  int64_t tokens() const override { return vit().config().num_patches() + 1; }
  int64_t image_size() const override { return vit().config().image_height; }
  bool has_pooler() const override { return vit().has_pooler(); }

 protected:
  std::optional<ViTModel> model_;
  std::optional<ViTForImageClassification> classifier_;
};

class ViTParts final : public ModelParts, public ViTVision, public ImageClassifierHead {
 public:
  ViTParts(const ViTConfig& config, WeightLoader& weights) {
    if (weights.has("classifier.weight")) classifier_.emplace(config, weights);
    else model_.emplace(config, weights);
  }
  const VisionEncoder* vision() const override { return this; }
  const ImageClassifierHead* classifier() const override { return classifier_ ? this : nullptr; }
  std::string description() const override { return describe(vit().config()) + (classifier_ ? ", classifier" : ""); }
  Tensor logits(const Tensor& pixel_values) const override { return classifier_->forward(pixel_values); }
  std::string label(int64_t id) const override {
    const auto& names = vit().config().id2label;
    auto it = names.find(id);
    return it == names.end() ? str("LABEL_", id) : it->second;  // transformers' default names
  }
};

}  // namespace

std::unique_ptr<ModelParts> load_vit(const JsonObject& config, const Checkpoint& checkpoint, const Placement& placement,
                                     HalfWeights half) {
  return load_parts<ViTParts, ViTConfig>(config, checkpoint, placement, half);
}

int64_t vit_image_size(const JsonObject& config) { return ViTConfig::from_json(config).image_height; }

}  // namespace mmx
