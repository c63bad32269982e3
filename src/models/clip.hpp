// CLIP (transformers CLIPModel, CLIPTextModel(WithProjection), CLIPVisionModel(WithProjection)): a
// causal text transformer pooled at the end-of-text token, a ViT-style vision transformer with
// pre_layrnorm and post_layernorm, and linear projections into the joint space.
// Follows transformers v4.45.0 src/transformers/models/clip/modeling_clip.py, module by module.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "backend/ops.hpp"
#include "io/json_config.hpp"
#include "models/blocks/linear.hpp"
#include "models/encoder.hpp"

namespace mmx {

struct CLIPTextConfig {
  int64_t vocab_size = 49408, hidden_size = 512, intermediate_size = 2048, projection_dim = 512;
  int64_t num_hidden_layers = 12, num_attention_heads = 8, max_position_embeddings = 77;
  std::string hidden_act = "quick_gelu";
  double layer_norm_eps = 1e-5;
  int64_t pad_token_id = 1, bos_token_id = 49406, eos_token_id = 49407;
  static CLIPTextConfig from_json(const JsonObject& json);
};

struct CLIPVisionConfig {
  int64_t hidden_size = 768, intermediate_size = 3072, projection_dim = 512;
  int64_t num_hidden_layers = 12, num_attention_heads = 12, num_channels = 3, image_size = 224, patch_size = 32;
  std::string hidden_act = "quick_gelu";
  double layer_norm_eps = 1e-5;
  int64_t num_patches() const { return (image_size / patch_size) * (image_size / patch_size); }
  static CLIPVisionConfig from_json(const JsonObject& json);
};

// config.json of "clip" (text_config + vision_config + projection_dim), "clip_text_model" or
// "clip_vision_model" (the flat configs of SDXL's text encoders and of image-only checkpoints).
struct CLIPConfig {
  std::optional<CLIPTextConfig> text_config;
  std::optional<CLIPVisionConfig> vision_config;
  int64_t projection_dim = 512;
  double logit_scale_init_value = 2.6592;
  static CLIPConfig from_json(const JsonObject& json);
};

// One pre-norm encoder layer: x + self_attn(layer_norm1(x)); x + mlp(layer_norm2(x)).
struct CLIPEncoderLayer {
  LayerNorm layer_norm1, layer_norm2;
  Linear q_proj, k_proj, v_proj, out_proj;  // self_attn.*
  Linear fc1, fc2;                          // mlp.*
  ops::Activation act;
  int64_t heads;
  CLIPEncoderLayer(const WeightView& w, int64_t hidden, int64_t intermediate, int64_t heads, const std::string& act,
                   double eps);
  Tensor forward(const Tensor& hidden_states, const Tensor& attention_mask, bool causal) const;
};

struct CLIPTextOutputs {
  Tensor last_hidden_state;           // [B, T, C] after final_layer_norm
  Tensor pooler_output;               // [B, C] at the end-of-text token
  std::vector<Tensor> hidden_states;  // embeddings + every layer's output (when asked for)
};

class CLIPTextTransformer {
 public:
  CLIPTextTransformer(const WeightView& w, const CLIPTextConfig& config);
  const CLIPTextConfig& config() const { return config_; }
  CLIPTextOutputs forward(const Tensor& input_ids, const Tensor& attention_mask, bool output_hidden_states = false) const;

 private:
  CLIPTextConfig config_;
  Placement placement_;  // inputs move there, outputs come back as host F32
  Tensor token_embedding, position_embedding;  // embeddings.*.weight
  std::vector<CLIPEncoderLayer> layers;        // encoder.layers.N
  LayerNorm final_layer_norm;
};

struct CLIPVisionOutputs {
  Tensor last_hidden_state;  // [B, patches + 1, C], the encoder output (no final norm, as transformers)
  Tensor pooler_output;      // [B, C] = post_layernorm(last_hidden_state[:, 0])
};

class CLIPVisionTransformer {
 public:
  CLIPVisionTransformer(const WeightView& w, const CLIPVisionConfig& config);
  const CLIPVisionConfig& config() const { return config_; }
  CLIPVisionOutputs forward(const Tensor& pixel_values) const;

 private:
  CLIPVisionConfig config_;
  Placement placement_;
  Tensor class_embedding;      // [C]
  Linear patch_embedding;      // Conv2d(k = stride = patch, bias=False) as [C, 3·p·p]
  Tensor position_embedding;   // [patches + 1, C]
  LayerNorm pre_layrnorm, post_layernorm;  // (sic: transformers' name)
  std::vector<CLIPEncoderLayer> layers;
};

// Whatever parts the checkpoint holds: text and/or vision towers, their projections, logit_scale.
class CLIPModel {
 public:
  CLIPModel(const CLIPConfig& config, WeightLoader& weights);
  bool has_text() const { return text_model_.has_value(); }
  bool has_vision() const { return vision_model_.has_value(); }
  bool has_text_projection() const { return text_projection_.has_value(); }
  bool has_visual_projection() const { return visual_projection_.has_value(); }
  const CLIPTextTransformer& text_model() const;
  const CLIPVisionTransformer& vision_model() const;
  float logit_scale() const { return logit_scale_; }  // the stored log-scale; logits use exp() of it

  Tensor get_text_features(const Tensor& input_ids, const Tensor& attention_mask) const;  // [B, projection_dim]
  Tensor get_image_features(const Tensor& pixel_values) const;
  Tensor project_text(const Tensor& pooled) const;
  Tensor project_image(const Tensor& pooled) const;

 private:
  std::optional<CLIPTextTransformer> text_model_;
  std::optional<CLIPVisionTransformer> vision_model_;
  std::optional<Linear> text_projection_, visual_projection_;
  Placement placement_;
  float logit_scale_ = 2.6592f;
};

// The registry's factory (models/registry.cpp): a CLIPModel, CLIPTextModel(WithProjection) or
// CLIPVisionModel(WithProjection) folder as text and/or vision encoders with their projections.
std::unique_ptr<ModelParts> load_clip(const JsonObject& config, const Checkpoint& checkpoint, const Placement& placement,
                                      HalfWeights half);
int64_t clip_image_size(const JsonObject& config);  // the vision tower's image_size

}  // namespace mmx
