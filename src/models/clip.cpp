#include "models/clip.hpp"

#include <cmath>
#include <cstring>

#include "core/log.hpp"

namespace mmx {

namespace {

// An object under `key`, with the legacy `<key>_dict` (older CLIP configs) overriding its entries.
JsonObject sub_config(const JsonObject& j, const std::string& key) {
  nlohmann::json merged = nlohmann::json::object();
  for (const std::string& k : {key, key + "_dict"}) {
    auto it = j.json().find(k);
    if (it == j.json().end() || it->is_null()) continue;
    if (!it->is_object()) fail(j.source(), ": key '", k, "' must be an object");
    merged.update(*it);
  }
  return JsonObject(merged, j.source() + ":" + key);
}

Tensor first_token(const Tensor& hidden) {  // hidden[:, 0]
  return ops::select_tokens(hidden, std::vector<int64_t>(size_t(hidden.dim(0)), 0));
}

}  // namespace

CLIPTextConfig CLIPTextConfig::from_json(const JsonObject& j) {
  CLIPTextConfig c;
  c.vocab_size = j.get_int("vocab_size", c.vocab_size, limits::kWidth);
  c.hidden_size = j.get_int("hidden_size", c.hidden_size, limits::kWidth);
  c.intermediate_size = j.get_int("intermediate_size", c.intermediate_size, limits::kWidth);
  c.projection_dim = j.get_int("projection_dim", c.projection_dim, limits::kWidth);
  c.num_hidden_layers = j.get_int("num_hidden_layers", c.num_hidden_layers, limits::kLayers);
  c.num_attention_heads = j.get_int("num_attention_heads", c.num_attention_heads, limits::kHeads);
  c.max_position_embeddings = j.get_int("max_position_embeddings", c.max_position_embeddings, limits::kWidth);
  c.hidden_act = j.get_string("hidden_act", c.hidden_act);
  c.layer_norm_eps = j.get_float("layer_norm_eps", c.layer_norm_eps, limits::kEpsilon);
  c.pad_token_id = j.get_int("pad_token_id", c.pad_token_id);
  c.bos_token_id = j.get_int("bos_token_id", c.bos_token_id);
  c.eos_token_id = j.get_int("eos_token_id", c.eos_token_id);
  if (c.hidden_size % c.num_attention_heads != 0)
    fail(j.source(), ": hidden_size ", c.hidden_size, " is not a multiple of num_attention_heads ", c.num_attention_heads);
  ops::activation_from_name(c.hidden_act);
  return c;
}

CLIPVisionConfig CLIPVisionConfig::from_json(const JsonObject& j) {
  CLIPVisionConfig c;
  c.hidden_size = j.get_int("hidden_size", c.hidden_size, limits::kWidth);
  c.intermediate_size = j.get_int("intermediate_size", c.intermediate_size, limits::kWidth);
  c.projection_dim = j.get_int("projection_dim", c.projection_dim, limits::kWidth);
  c.num_hidden_layers = j.get_int("num_hidden_layers", c.num_hidden_layers, limits::kLayers);
  c.num_attention_heads = j.get_int("num_attention_heads", c.num_attention_heads, limits::kHeads);
  c.num_channels = j.get_int("num_channels", c.num_channels, limits::kImageChannels);
  c.image_size = j.get_int("image_size", c.image_size, limits::kImageSide);
  c.patch_size = j.get_int("patch_size", c.patch_size, limits::kImageSide);
  c.hidden_act = j.get_string("hidden_act", c.hidden_act);
  c.layer_norm_eps = j.get_float("layer_norm_eps", c.layer_norm_eps, limits::kEpsilon);
  if (c.hidden_size % c.num_attention_heads != 0)
    fail(j.source(), ": hidden_size ", c.hidden_size, " is not a multiple of num_attention_heads ", c.num_attention_heads);
  if (c.patch_size > c.image_size) fail(j.source(), ": patch_size exceeds image_size");
  ops::activation_from_name(c.hidden_act);
  return c;
}

CLIPConfig CLIPConfig::from_json(const JsonObject& j) {
  CLIPConfig c;
  const std::string type = j.require_string("model_type");
  if (type == "clip") {
    c.text_config = CLIPTextConfig::from_json(sub_config(j, "text_config"));
    c.vision_config = CLIPVisionConfig::from_json(sub_config(j, "vision_config"));
    c.projection_dim = j.get_int("projection_dim", c.projection_dim, limits::kWidth);
    c.logit_scale_init_value = j.get_float("logit_scale_init_value", c.logit_scale_init_value, limits::kFinite);
  } else if (type == "clip_text_model") {
    c.text_config = CLIPTextConfig::from_json(j);
    c.projection_dim = c.text_config->projection_dim;
  } else if (type == "clip_vision_model") {
    c.vision_config = CLIPVisionConfig::from_json(j);
    c.projection_dim = c.vision_config->projection_dim;
  } else {
    fail(j.source(), ": model_type '", type, "' is not a CLIP model");
  }
  return c;
}

CLIPEncoderLayer::CLIPEncoderLayer(const WeightView& w, int64_t hidden, int64_t intermediate, int64_t heads,
                                   const std::string& act, double eps)
    : layer_norm1(w.sub("layer_norm1"), hidden, eps),
      layer_norm2(w.sub("layer_norm2"), hidden, eps),
      q_proj(w.sub("self_attn").sub("q_proj"), hidden, hidden),
      k_proj(w.sub("self_attn").sub("k_proj"), hidden, hidden),
      v_proj(w.sub("self_attn").sub("v_proj"), hidden, hidden),
      out_proj(w.sub("self_attn").sub("out_proj"), hidden, hidden),
      fc1(w.sub("mlp").sub("fc1"), hidden, intermediate),
      fc2(w.sub("mlp").sub("fc2"), intermediate, hidden),
      act(ops::activation_from_name(act)),
      heads(heads) {}

Tensor CLIPEncoderLayer::forward(const Tensor& hidden_states, const Tensor& attention_mask, bool causal) const {
  const Tensor normed = layer_norm1.forward(hidden_states);
  // The residuals and the MLP's activation are applied inside the GEMMs, tile by tile.
  const Tensor x = out_proj.forward(ops::attention(q_proj.forward(normed), k_proj.forward(normed), v_proj.forward(normed),
                                                   heads, attention_mask, causal),
                                    {hidden_states, ops::Activation::Identity});  // [B, T, C]
  const Tensor mlp = fc1.forward(layer_norm2.forward(x), {Tensor(), act});  // [B, T, intermediate]
  return fc2.forward(mlp, {x, ops::Activation::Identity});
}

CLIPTextTransformer::CLIPTextTransformer(const WeightView& w, const CLIPTextConfig& c)
    : config_(c),
      placement_(w.placement()),
      token_embedding(w.sub("embeddings").sub("token_embedding").get_embedding("weight", {c.vocab_size, c.hidden_size})),
      position_embedding(
          w.sub("embeddings").sub("position_embedding").get_embedding("weight", {c.max_position_embeddings, c.hidden_size})),
      final_layer_norm(w.sub("final_layer_norm"), c.hidden_size, c.layer_norm_eps) {
  for (int64_t i = 0; i < c.num_hidden_layers; ++i)
    layers.emplace_back(w.sub("encoder").sub("layers", i), c.hidden_size, c.intermediate_size, c.num_attention_heads,
                        c.hidden_act, c.layer_norm_eps);
}

CLIPTextOutputs CLIPTextTransformer::forward(const Tensor& input_ids, const Tensor& attention_mask,
                                             bool output_hidden_states) const {
  if (input_ids.ndim() != 2 || input_ids.dtype() != DType::I64)
    fail("CLIP text: input_ids must be I64 [batch, seq], got ", shape_str(input_ids.shape()));
  const int64_t batch = input_ids.dim(0), seq = input_ids.dim(1);
  if (seq > config_.max_position_embeddings)
    throw Error(ErrorKind::Runtime,
                str("CLIP text: ", seq, " tokens exceed max_position_embeddings ", config_.max_position_embeddings),
                "truncate the texts (CLIP reads at most 77 tokens)");
  const Tensor mask = placement_.in(attention_mask);
  Tensor hidden = ops::embedding(token_embedding, input_ids);   // [B, T, C]
  ops::add_(hidden, position_embedding.narrow0(0, seq));        // + position_embedding(arange(T))
  CLIPTextOutputs out;
  if (output_hidden_states) out.hidden_states.push_back(placement_.out(hidden));
  for (const auto& layer : layers) {
    hidden = layer.forward(hidden, mask, /*causal=*/true);
    if (output_hidden_states) out.hidden_states.push_back(placement_.out(hidden));
  }
  const Tensor last = final_layer_norm.forward(hidden);
  out.last_hidden_state = placement_.out(last);
  // Pooled at the end-of-text token. Configs with the legacy eos_token_id 2 (OpenAI's, SDXL's) pool at
  // argmax(input_ids), which is the first 49407; newer ones at the first eos_token_id.
  const Tensor host_ids = input_ids.to(Device::cpu());
  const int64_t* ids = host_ids.data<int64_t>();
  std::vector<int64_t> positions(size_t(batch), 0);
  for (int64_t b = 0; b < batch; ++b) {
    int64_t at = 0;
    for (int64_t t = 0; t < seq; ++t) {
      const int64_t id = ids[b * seq + t];
      if (config_.eos_token_id == 2 ? id > ids[b * seq + at] : id == config_.eos_token_id) {
        at = t;
        if (config_.eos_token_id != 2) break;
      }
    }
    positions[size_t(b)] = at;
  }
  out.pooler_output = placement_.out(ops::select_tokens(last, positions));
  return out;
}

CLIPVisionTransformer::CLIPVisionTransformer(const WeightView& w, const CLIPVisionConfig& c)
    : config_(c),
      placement_(w.placement()),
      class_embedding(w.sub("embeddings").get_embedding("class_embedding", {c.hidden_size})),
      position_embedding(
          w.sub("embeddings").sub("position_embedding").get_embedding("weight", {c.num_patches() + 1, c.hidden_size})),
      pre_layrnorm(w.sub("pre_layrnorm"), c.hidden_size, c.layer_norm_eps),
      post_layernorm(w.sub("post_layernorm"), c.hidden_size, c.layer_norm_eps) {
  // Conv2d(channels, C, k = stride = patch, bias=False) as a Linear over flattened patches.
  patch_embedding.weight = w.sub("embeddings").sub("patch_embedding")
                               .get_matrix("weight", {c.hidden_size, c.num_channels, c.patch_size, c.patch_size})
                               .reshape({c.hidden_size, c.num_channels * c.patch_size * c.patch_size});
  for (int64_t i = 0; i < c.num_hidden_layers; ++i)
    layers.emplace_back(w.sub("encoder").sub("layers", i), c.hidden_size, c.intermediate_size, c.num_attention_heads,
                        c.hidden_act, c.layer_norm_eps);
}

CLIPVisionOutputs CLIPVisionTransformer::forward(const Tensor& pixel_values) const {
  const CLIPVisionConfig& c = config_;
  if (pixel_values.ndim() != 4 || pixel_values.dim(1) != c.num_channels || pixel_values.dim(2) != c.image_size ||
      pixel_values.dim(3) != c.image_size)
    throw Error(ErrorKind::Runtime,
                str("CLIP vision: pixel_values ", shape_str(pixel_values.shape()), " do not match the model's [batch, ",
                    c.num_channels, ", ", c.image_size, ", ", c.image_size, "]"),
                "the image processor's crop size must equal the model's image_size");
  // The patch embedding (Conv2d with kernel = stride = patch, no bias) as one GEMM over flattened patches.
  const Tensor patch_embeds = patch_embedding.forward(ops::patchify(placement_.in(pixel_values), c.patch_size, c.patch_size));
  Tensor embeddings = ops::concat1(class_embedding.reshape({1, 1, c.hidden_size}), patch_embeds);  // [B, N + 1, C]
  ops::add_(embeddings, position_embedding);
  Tensor hidden_states = pre_layrnorm.forward(embeddings);
  for (const auto& layer : layers) hidden_states = layer.forward(hidden_states, Tensor(), false);
  CLIPVisionOutputs out;
  out.last_hidden_state = placement_.out(hidden_states);
  out.pooler_output = placement_.out(post_layernorm.forward(first_token(hidden_states)));
  return out;
}

CLIPModel::CLIPModel(const CLIPConfig& config, WeightLoader& weights) : placement_(weights.placement()) {
  const WeightView root(weights);
  if (config.text_config) {
    text_model_.emplace(root.sub("text_model"), *config.text_config);
    if (root.has("text_projection.weight"))
      text_projection_.emplace(root.sub("text_projection"), config.text_config->hidden_size, config.projection_dim, false);
  }
  if (config.vision_config) {
    vision_model_.emplace(root.sub("vision_model"), *config.vision_config);
    if (root.has("visual_projection.weight"))
      visual_projection_.emplace(root.sub("visual_projection"), config.vision_config->hidden_size, config.projection_dim,
                                 false);
  }
  logit_scale_ = static_cast<float>(config.logit_scale_init_value);
  if (root.has("logit_scale")) logit_scale_ = root.get_host("logit_scale", {}).data<float>()[0];
  weights.finish("CLIPModel", {"position_ids"});
}

const CLIPTextTransformer& CLIPModel::text_model() const {
  if (!text_model_) fail("this CLIP checkpoint has no text model");
  return *text_model_;
}
const CLIPVisionTransformer& CLIPModel::vision_model() const {
  if (!vision_model_) fail("this CLIP checkpoint has no vision model");
  return *vision_model_;
}

Tensor CLIPModel::project_text(const Tensor& pooled) const {
  if (!text_projection_) fail("this CLIP checkpoint has no text_projection (a CLIPTextModel): use the pooled output");
  return placement_.out(text_projection_->forward(placement_.in(pooled)));
}
Tensor CLIPModel::project_image(const Tensor& pooled) const {
  if (!visual_projection_) fail("this CLIP checkpoint has no visual_projection: use the pooled output");
  return placement_.out(visual_projection_->forward(placement_.in(pooled)));
}

Tensor CLIPModel::get_text_features(const Tensor& input_ids, const Tensor& attention_mask) const {
  return project_text(text_model().forward(input_ids, attention_mask).pooler_output);
}
Tensor CLIPModel::get_image_features(const Tensor& pixel_values) const {
  return project_image(vision_model().forward(pixel_values).pooler_output);
}

namespace {

class ClipText final : public TextEncoder {
 public:
  explicit ClipText(const CLIPModel& model) : model_(model) {}
  EncoderOutputs forward(const Tensor& input_ids, const Tensor&, const Tensor& attention_mask,
                         bool output_hidden_states) const override {
    CLIPTextOutputs o = model_.text_model().forward(input_ids, attention_mask, output_hidden_states);
    return {o.last_hidden_state, o.pooler_output, std::move(o.hidden_states)};
  }
  int64_t max_positions() const override { return model_.text_model().config().max_position_embeddings; }
  bool has_pooler() const override { return true; }
  bool has_projection() const override { return model_.has_text_projection(); }
  Tensor project(const Tensor& pooled) const override { return model_.project_text(pooled); }

 private:
  const CLIPModel& model_;
};

class ClipVision final : public VisionEncoder {
 public:
  explicit ClipVision(const CLIPModel& model) : model_(model) {}
  EncoderOutputs forward(const Tensor& pixel_values) const override {
    CLIPVisionOutputs o = model_.vision_model().forward(pixel_values);
    return {o.last_hidden_state, o.pooler_output, {}};
  }
  int64_t tokens() const override { return model_.vision_model().config().num_patches() + 1; }
  int64_t image_size() const override { return model_.vision_model().config().image_size; }
  bool has_pooler() const override { return true; }
  bool has_projection() const override { return model_.has_visual_projection(); }
  Tensor project(const Tensor& pooled) const override { return model_.project_image(pooled); }

 private:
  const CLIPModel& model_;
};

class ClipParts final : public ModelParts {
 public:
  ClipParts(const CLIPConfig& config, WeightLoader& weights) : model_(config, weights), text_(model_), vision_(model_) {}
  const TextEncoder* text() const override { return model_.has_text() ? &text_ : nullptr; }
  const VisionEncoder* vision() const override { return model_.has_vision() ? &vision_ : nullptr; }
  std::optional<float> logit_scale() const override { return model_.logit_scale(); }
  std::string description() const override {
    std::string s = "clip:";
    if (model_.has_text()) {
      const auto& c = model_.text_model().config();
      s += str(" text ", c.num_hidden_layers, " layers × ", c.hidden_size, " (", c.hidden_act, ")");
    }
    if (model_.has_vision()) {
      const auto& c = model_.vision_model().config();
      s += str(model_.has_text() ? "," : "", " vision ", c.num_hidden_layers, " layers × ", c.hidden_size, ", patch ",
               c.patch_size);
    }
    return s;
  }

 private:
  CLIPModel model_;
  ClipText text_;
  ClipVision vision_;
};

}  // namespace

std::unique_ptr<ModelParts> load_clip(const JsonObject& config, const Checkpoint& checkpoint, const Placement& placement,
                                      HalfWeights half) {
  return load_parts<ClipParts, CLIPConfig>(config, checkpoint, placement, half);
}

int64_t clip_image_size(const JsonObject& config) {
  const CLIPConfig c = CLIPConfig::from_json(config);
  if (!c.vision_config) fail(config.source(), ": a CLIP text model has no image size");
  return c.vision_config->image_size;
}

}  // namespace mmx
