// diffusers' UNet2DConditionModel, built from its config (SDXL base and the test model are two
// configurations of it): time and text_time embeddings, down blocks (DownBlock2D,
// CrossAttnDownBlock2D), UNetMidBlock2DCrossAttn, up blocks (CrossAttnUpBlock2D, UpBlock2D).
#pragma once
#include <memory>
#include <optional>
#include <vector>

#include "io/json_config.hpp"
#include "models/blocks/conv.hpp"
#include "models/blocks/linear.hpp"

namespace mmx {

struct UNet2DConditionConfig {  // per-block lists are expanded from single values, as diffusers does
  int64_t in_channels = 4, out_channels = 4, sample_size = 64;
  std::vector<int64_t> block_out_channels = {320, 640, 1280, 1280};
  std::vector<std::string> down_block_types, up_block_types;
  std::string mid_block_type = "UNetMidBlock2DCrossAttn";
  std::vector<int64_t> layers_per_block, transformer_layers_per_block, num_attention_heads, cross_attention_dim;
  std::vector<int64_t> reverse_transformer_layers_per_block;  // empty: the reverse of transformer_layers_per_block
  int64_t norm_num_groups = 32, conv_in_kernel = 3, conv_out_kernel = 3, downsample_padding = 1;
  double norm_eps = 1e-5, mid_block_scale_factor = 1;
  std::string act_fn = "silu";
  bool flip_sin_to_cos = true, use_linear_projection = false;
  double freq_shift = 0;
  std::string addition_embed_type;  // "" or "text_time"
  int64_t addition_time_embed_dim = 0, projection_class_embeddings_input_dim = 0;
  static UNet2DConditionConfig from_json(const JsonObject& json);
  int64_t time_embed_dim() const { return block_out_channels.front() * 4; }
};

// Transformer2DModel with BasicTransformerBlocks (self-attention, cross-attention, GEGLU feed-forward).
class SpatialTransformer;

class UNet2DConditionModel {
 public:
  UNet2DConditionModel(const UNet2DConditionConfig& config, WeightLoader& weights);
  ~UNet2DConditionModel();
  UNet2DConditionModel(UNet2DConditionModel&&) noexcept;
  const UNet2DConditionConfig& config() const { return config_; }

  const Placement& placement() const { return placement_; }

  // What one call reads: the sample, the sinusoidal time features (computed on the host, a few KB), the
  // text_time features (pooled text embeddings and time-id features), encoder_hidden_states.
  struct Inputs {
    Tensor sample, time_features, add_features, context;
  };
  // sample [B, C, h, w], one timestep for the batch, encoder_hidden_states [B, T, cross_attention_dim];
  // for "text_time": text_embeds [B, P] and time_ids [B, 6]. Checked, as host F32 tensors.
  Inputs prepare(const Tensor& sample, float timestep, const Tensor& encoder_hidden_states,
                 const Tensor& text_embeds = Tensor(), const Tensor& time_ids = Tensor()) const;
  // The forward pass on inputs already on the placement's device (in its activation dtype), with device
  // ops only, so that it can be recorded and replayed (pipelines/step_runner.hpp). → [B, out_channels, h, w].
  Tensor forward(const Inputs& on_device) const;
  // prepare, then forward on the device: host F32 in, host F32 out.
  Tensor forward(const Tensor& sample, float timestep, const Tensor& encoder_hidden_states,
                 const Tensor& text_embeds = Tensor(), const Tensor& time_ids = Tensor()) const;

 private:
  struct Block {  // one down, mid or up block
    std::vector<ResnetBlock2D> resnets;
    std::vector<std::unique_ptr<SpatialTransformer>> attentions;  // empty, or one per resnet (mid: one fewer)
    std::optional<Downsample2D> downsampler;  // down blocks: a strided convolution
    std::optional<Conv2d> upsampler;          // up blocks: a convolution after nearest 2×
  };
  Tensor time_embedding(const Tensor& t_emb, const Linear& l1, const Linear& l2) const;

  UNet2DConditionConfig config_;
  ops::Activation act_;
  Placement placement_;  // inputs move there, the output comes back as host F32
  Conv2d conv_in, conv_out;
  Linear time_linear_1, time_linear_2, add_linear_1, add_linear_2;
  std::vector<Block> down_blocks, up_blocks;
  Block mid_block;
  GroupNorm conv_norm_out;
};

// get_timestep_embedding: [N] timesteps → [N, dim] sinusoidal features in float32, as diffusers.
Tensor timestep_embedding(const std::vector<float>& timesteps, int64_t dim, bool flip_sin_to_cos, double freq_shift);

}  // namespace mmx
