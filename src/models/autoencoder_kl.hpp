// diffusers' AutoencoderKL (SDXL's VAE), built from its config: the encoder from images to the latent
// distribution, and the decoder from latents to images.
#pragma once
#include <optional>
#include <vector>

#include "io/json_config.hpp"
#include "models/blocks/conv.hpp"
#include "models/blocks/linear.hpp"

namespace mmx {

struct AutoencoderKLConfig {  // diffusers' defaults
  int64_t in_channels = 3, out_channels = 3, latent_channels = 4, layers_per_block = 1, norm_num_groups = 32;
  int64_t sample_size = 32;
  std::vector<int64_t> block_out_channels = {64};
  std::vector<std::string> down_block_types = {"DownEncoderBlock2D"};
  std::vector<std::string> up_block_types = {"UpDecoderBlock2D"};
  std::string act_fn = "silu";
  double scaling_factor = 0.18215;
  std::optional<double> shift_factor;
  std::vector<double> latents_mean, latents_std;  // empty: not used
  bool force_upcast = true, use_quant_conv = true, use_post_quant_conv = true, mid_block_add_attention = true;
  static AutoencoderKLConfig from_json(const JsonObject& json);
};

// The mid block's single-head self-attention over all positions (group norm, q/k/v, output, residual).
struct VAEAttention {
  GroupNorm group_norm;
  Linear to_q, to_k, to_v, to_out;
  VAEAttention() = default;
  VAEAttention(const WeightView& w, int64_t channels, int64_t groups);
  Tensor forward(const Tensor& x) const;
};

// vae.encode(x).latent_dist, diffusers' DiagonalGaussianDistribution: the encoder's moments split in
// halves on the channel axis.
struct LatentDistribution {
  Tensor mean, logvar;  // [N, latent_channels, h, w]; logvar clamped to [-30, 20]
  Tensor std() const;   // exp(0.5 · logvar)
  Tensor mode() const { return mean; }
  Tensor sample(const Tensor& noise) const;  // mean + std · noise (noise: randn of mean's shape)
};

class AutoencoderKL {
 public:
  AutoencoderKL(const AutoencoderKLConfig& config, WeightLoader& weights);
  const AutoencoderKLConfig& config() const { return config_; }
  // vae.encode(x).latent_dist: [N, in_channels, H, W] (H, W multiples of the scale factor) → [N, C, H/f, W/f].
  LatentDistribution encode(const Tensor& x) const;
  // vae.decode(z).sample: [N, latent_channels, h, w] → [N, out_channels, h·f, w·f].
  Tensor decode(const Tensor& z) const;
  int64_t scale_factor() const { return int64_t(1) << (config_.block_out_channels.size() - 1); }

 private:
  struct UpBlock {
    std::vector<ResnetBlock2D> resnets;
    std::optional<Conv2d> upsampler;  // nearest 2× then a 3×3 convolution
  };
  struct DownBlock {
    std::vector<ResnetBlock2D> resnets;
    std::optional<Downsample2D> downsampler;  // F.pad (0, 1, 0, 1), then a stride-2 convolution
  };
  struct Encoder {
    Conv2d conv_in, conv_out;  // conv_out gives 2 · latent_channels (mean and log-variance)
    std::vector<DownBlock> down_blocks;
    ResnetBlock2D mid_resnet_0, mid_resnet_1;
    std::optional<VAEAttention> mid_attention;
    GroupNorm conv_norm_out;
  };
  AutoencoderKLConfig config_;
  Placement placement_;  // inputs move there, outputs come back as host F32
  Encoder encoder_;
  std::optional<Conv2d> quant_conv;
  std::optional<Conv2d> post_quant_conv;
  Conv2d conv_in, conv_out;
  ResnetBlock2D mid_resnet_0, mid_resnet_1;
  std::optional<VAEAttention> mid_attention;
  std::vector<UpBlock> up_blocks;
  GroupNorm conv_norm_out;
  ops::Activation act_;
};

}  // namespace mmx
