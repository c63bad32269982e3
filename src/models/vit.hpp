// Vision Transformer (transformers ViTModel, ViTForImageClassification): patch embedding as one GEMM,
// [CLS] token, learned positions, pre-norm encoder, final layer norm, pooler, classifier head.
// Follows transformers v4.45.0 src/transformers/models/vit/modeling_vit.py, module by module.
#pragma once
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "backend/ops.hpp"
#include "io/json_config.hpp"
#include "models/blocks/linear.hpp"
#include "models/encoder.hpp"

namespace mmx {

struct ViTConfig {
  int64_t hidden_size = 768;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 12;
  int64_t intermediate_size = 3072;
  std::string hidden_act = "gelu";
  double layer_norm_eps = 1e-12;
  int64_t image_height = 224, image_width = 224;  // "image_size": int or [height, width]
  int64_t patch_height = 16, patch_width = 16;    // "patch_size": int or [height, width]
  int64_t num_channels = 3;
  bool qkv_bias = true;
  int64_t pooler_output_size = -1;  // default: hidden_size
  std::string pooler_act = "tanh";
  std::map<int64_t, std::string> id2label;

  int64_t num_patches() const { return (image_height / patch_height) * (image_width / patch_width); }
  static ViTConfig from_json(const JsonObject& json);
};

struct ViTEmbeddings {
  Tensor cls_token;             // [1, 1, C]
  Tensor position_embeddings;   // [1, patches + 1, C]
  Linear patch_projection;      // patch_embeddings.projection: Conv2d(k = stride = patch) as [C, channels·ph·pw]
  const ViTConfig* config;
  ViTEmbeddings(const WeightView& w, const ViTConfig& c);
  Tensor forward(const Tensor& pixel_values) const;  // [B, channels, H, W] → [B, patches + 1, C]
};

struct ViTLayer {
  LayerNorm layernorm_before, layernorm_after;
  Linear query, key, value;  // attention.attention.*
  Linear attention_output;   // attention.output.dense
  Linear intermediate;       // intermediate.dense
  Linear output;             // output.dense
  ops::Activation act;
  int64_t heads;
  ViTLayer(const WeightView& w, const ViTConfig& c);
  Tensor forward(const Tensor& hidden_states) const;
};

struct ViTOutputs {
  Tensor last_hidden_state;  // [B, patches + 1, C], after the final layer norm
  Tensor pooler_output;      // [B, pooler_output_size]; undefined without pooler weights
};

class ViTModel {
 public:
  // Binds ViTModel weights, or the backbone of ViTForImageClassification (keys under "vit.").
  ViTModel(const ViTConfig& config, WeightLoader& weights);
  const ViTConfig& config() const { return config_; }
  bool has_pooler() const { return pooler_.has_value(); }
  const Placement& placement() const { return placement_; }
  ViTOutputs forward(const Tensor& pixel_values) const;  // host F32 in, host F32 out

 private:
  friend class ViTForImageClassification;
  ViTModel(const ViTConfig& config, const WeightView& root, bool load_pooler);
  ViTOutputs forward_on_device(const Tensor& pixel_values) const;  // outputs stay on the placement's device
  ViTConfig config_;
  Placement placement_;
  std::optional<ViTEmbeddings> embeddings_;
  std::vector<ViTLayer> layers_;  // encoder.layer.N
  LayerNorm layernorm_;
  std::optional<Linear> pooler_;  // pooler.dense (+ pooler_act)
  ops::Activation pooler_act_;
};

class ViTForImageClassification {
 public:
  // Binds the backbone under "vit." (with its pooler, when the checkpoint has one) and the classifier.
  ViTForImageClassification(const ViTConfig& config, WeightLoader& weights);
  const ViTConfig& config() const { return vit_.config(); }
  const ViTModel& vit() const { return vit_; }
  Tensor forward(const Tensor& pixel_values) const;  // logits [B, num_labels]

 private:
  ViTModel vit_;
  Linear classifier;
};

// The registry's factory (models/registry.cpp): a ViTModel folder as a vision encoder, and a
// ViTForImageClassification folder as a classifier too.
std::unique_ptr<ModelParts> load_vit(const JsonObject& config, const Checkpoint& checkpoint, const Placement& placement,
                                     HalfWeights half);
int64_t vit_image_size(const JsonObject& config);  // the square size the default processor resizes to

}  // namespace mmx
