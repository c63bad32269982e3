// AutoencoderKL module by module as diffusers' Encoder.forward (conv_in, the down blocks: resnets then
// pad + stride-2 conv, the mid block, norm, act, conv_out, quant_conv) and Decoder.forward (post_quant_conv,
// conv_in, the mid block: resnet, attention, resnet, the up blocks: resnets then nearest 2× + conv,
// norm, act, conv_out).
#include "models/autoencoder_kl.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "mmx/error.hpp"
#include "models/blocks/layout.hpp"

namespace mmx {

namespace {
// A non-empty list under `key`, each entry read by `entry`; `fallback` when the key is absent.
template <class T, class Entry>
std::vector<T> list_of(const JsonObject& j, const std::string& key, std::vector<T> fallback, Entry entry) {
  if (!j.has(key)) return fallback;
  const auto& v = j.json().at(key);
  if (!v.is_array() || v.empty()) fail(j.source(), ": ", key, " must be a non-empty list");
  std::vector<T> out;
  for (const auto& e : v) out.push_back(entry(e));
  return out;
}

std::vector<int64_t> widths(const JsonObject& j, const std::string& key, std::vector<int64_t> fallback) {
  return list_of(j, key, std::move(fallback), [&](const nlohmann::json& e) { return j.int_element(key, e, limits::kWidth); });
}

std::vector<double> numbers(const JsonObject& j, const std::string& key) {
  return list_of<double>(j, key, {}, [&](const nlohmann::json& e) { return j.float_element(key, e, limits::kFinite); });
}

std::vector<std::string> names(const JsonObject& j, const std::string& key, std::vector<std::string> fallback) {
  return list_of(j, key, std::move(fallback), [&](const nlohmann::json& e) {
    if (!e.is_string()) fail(j.source(), ": ", key, " must hold strings");
    return e.get<std::string>();
  });
}
}  // namespace

AutoencoderKLConfig AutoencoderKLConfig::from_json(const JsonObject& j) {
  AutoencoderKLConfig c;
  c.in_channels = j.get_int("in_channels", c.in_channels, limits::kWidth);
  c.out_channels = j.get_int("out_channels", c.out_channels, limits::kWidth);
  c.latent_channels = j.get_int("latent_channels", c.latent_channels, limits::kWidth);
  c.layers_per_block = j.get_int("layers_per_block", c.layers_per_block, limits::kLayers);
  c.norm_num_groups = j.get_int("norm_num_groups", c.norm_num_groups, limits::kGroups);
  c.sample_size = j.get_int("sample_size", c.sample_size, limits::kImageSide);
  c.block_out_channels = widths(j, "block_out_channels", c.block_out_channels);
  c.down_block_types = names(j, "down_block_types", c.down_block_types);
  c.up_block_types = names(j, "up_block_types", c.up_block_types);
  c.act_fn = j.get_string("act_fn", c.act_fn);
  c.scaling_factor = j.get_float("scaling_factor", c.scaling_factor, limits::kPositiveScale);
  if (j.has("shift_factor")) c.shift_factor = j.get_float("shift_factor", 0, limits::kFinite);
  c.latents_mean = numbers(j, "latents_mean");
  c.latents_std = numbers(j, "latents_std");
  c.force_upcast = j.get_bool("force_upcast", c.force_upcast);
  c.use_quant_conv = j.get_bool("use_quant_conv", c.use_quant_conv);
  c.use_post_quant_conv = j.get_bool("use_post_quant_conv", c.use_post_quant_conv);
  c.mid_block_add_attention = j.get_bool("mid_block_add_attention", c.mid_block_add_attention);
  if (c.up_block_types.size() != c.block_out_channels.size())
    fail(j.source(), ": ", c.up_block_types.size(), " up_block_types for ", c.block_out_channels.size(), " block_out_channels");
  if (c.down_block_types.size() != c.block_out_channels.size())
    fail(j.source(), ": ", c.down_block_types.size(), " down_block_types for ", c.block_out_channels.size(), " block_out_channels");
  for (const auto& t : c.down_block_types)
    if (t != "DownEncoderBlock2D") fail(j.source(), ": down block type '", t, "' is not supported (DownEncoderBlock2D)");
  for (const auto& t : c.up_block_types)
    if (t != "UpDecoderBlock2D") fail(j.source(), ": up block type '", t, "' is not supported (UpDecoderBlock2D)");
  if (c.block_out_channels.size() > 16) fail(j.source(), ": block_out_channels must list 1 to 16 widths, one per resolution");
  for (int64_t ch : c.block_out_channels) {
    j.check("block_out_channels", ch, limits::kWidth);
    if (ch % c.norm_num_groups != 0)
      fail(j.source(), ": block_out_channels ", ch, " do not split into norm_num_groups ", c.norm_num_groups);
  }
  for (double m : c.latents_mean) j.check("latents_mean", m, limits::kFinite);
  for (double s : c.latents_std) j.check("latents_std", s, limits::kPositiveScale);
  if (c.latents_mean.size() != c.latents_std.size())
    fail(j.source(), ": latents_mean and latents_std differ in length");
  return c;
}

VAEAttention::VAEAttention(const WeightView& w, int64_t channels, int64_t groups)
    : group_norm(w.sub("group_norm"), groups, channels, 1e-6) {
  // Checkpoints from before diffusers 0.14 name the projections query/key/value/proj_attn.
  const bool legacy = !w.has("to_q.weight") && w.has("query.weight");
  to_q = Linear(w.sub(legacy ? "query" : "to_q"), channels, channels);
  to_k = Linear(w.sub(legacy ? "key" : "to_k"), channels, channels);
  to_v = Linear(w.sub(legacy ? "value" : "to_v"), channels, channels);
  to_out = Linear(legacy ? w.sub("proj_attn") : w.sub("to_out", 0), channels, channels);
}

Tensor VAEAttention::forward(const Tensor& x) const {
  const int64_t h = x.dim(2), w = x.dim(3);
  const Tensor tokens = channels_to_tokens(group_norm.forward(x));  // [N, HW, C]
  const Tensor attended = ops::attention(to_q.forward(tokens), to_k.forward(tokens), to_v.forward(tokens), 1, Tensor(), false);
  Tensor out = tokens_to_channels(to_out.forward(attended), h, w);
  ops::add_(out, x);  // residual_connection; rescale_output_factor is 1
  return out;
}

AutoencoderKL::AutoencoderKL(const AutoencoderKLConfig& config, WeightLoader& weights)
    : config_(config), placement_(weights.placement()), act_(ops::activation_from_name(config.act_fn)) {
  const WeightView root(weights), d = root.sub("decoder");
  const auto& ch = config.block_out_channels;
  const int64_t g = config.norm_num_groups, top = ch.back();
  {
    const WeightView e = root.sub("encoder");
    encoder_.conv_in = Conv2d(e.sub("conv_in"), config.in_channels, ch.front(), 3, 1, 1);
    int64_t out_ch = ch.front();
    for (size_t i = 0; i < ch.size(); ++i) {
      const int64_t in_ch = out_ch;
      out_ch = ch[i];
      const WeightView b = e.sub("down_blocks", static_cast<int64_t>(i));
      DownBlock block;
      for (int64_t j = 0; j < config.layers_per_block; ++j)
        block.resnets.emplace_back(b.sub("resnets", j), j == 0 ? in_ch : out_ch, out_ch, g, 1e-6, act_);
      if (i + 1 < ch.size()) block.downsampler.emplace(b.sub("downsamplers", 0), out_ch, out_ch, 0);
      encoder_.down_blocks.push_back(std::move(block));
    }
    const WeightView mid = e.sub("mid_block");
    encoder_.mid_resnet_0 = ResnetBlock2D(mid.sub("resnets", 0), top, top, g, 1e-6, act_);
    if (config.mid_block_add_attention) encoder_.mid_attention.emplace(mid.sub("attentions", 0), top, g);
    encoder_.mid_resnet_1 = ResnetBlock2D(mid.sub("resnets", 1), top, top, g, 1e-6, act_);
    encoder_.conv_norm_out = GroupNorm(e.sub("conv_norm_out"), g, top, 1e-6);
    encoder_.conv_out = Conv2d(e.sub("conv_out"), top, 2 * config.latent_channels, 3, 1, 1);
    if (config.use_quant_conv)
      quant_conv.emplace(root.sub("quant_conv"), 2 * config.latent_channels, 2 * config.latent_channels, 1);
  }
  if (config.use_post_quant_conv)
    post_quant_conv.emplace(root.sub("post_quant_conv"), config.latent_channels, config.latent_channels, 1);
  conv_in = Conv2d(d.sub("conv_in"), config.latent_channels, top, 3, 1, 1);
  const WeightView mid = d.sub("mid_block");
  mid_resnet_0 = ResnetBlock2D(mid.sub("resnets", 0), top, top, g, 1e-6, act_);
  if (config.mid_block_add_attention) mid_attention.emplace(mid.sub("attentions", 0), top, g);
  mid_resnet_1 = ResnetBlock2D(mid.sub("resnets", 1), top, top, g, 1e-6, act_);
  int64_t out_ch = top;
  for (size_t i = 0; i < ch.size(); ++i) {
    const int64_t prev = out_ch;
    out_ch = ch[ch.size() - 1 - i];
    const WeightView b = d.sub("up_blocks", static_cast<int64_t>(i));
    UpBlock block;
    for (int64_t j = 0; j <= config.layers_per_block; ++j)
      block.resnets.emplace_back(b.sub("resnets", j), j == 0 ? prev : out_ch, out_ch, g, 1e-6, act_);
    if (i + 1 < ch.size()) block.upsampler.emplace(b.sub("upsamplers", 0).sub("conv"), out_ch, out_ch, 3, 1, 1);
    up_blocks.push_back(std::move(block));
  }
  conv_norm_out = GroupNorm(d.sub("conv_norm_out"), g, ch.front(), 1e-6);
  conv_out = Conv2d(d.sub("conv_out"), ch.front(), config.out_channels, 3, 1, 1);
  weights.finish("AutoencoderKL");
}

LatentDistribution AutoencoderKL::encode(const Tensor& x) const {
  const int64_t f = scale_factor();
  if (x.ndim() != 4 || x.dim(1) != config_.in_channels)
    fail("AutoencoderKL.encode: images must be [N, ", config_.in_channels, ", H, W], got ", shape_str(x.shape()));
  if (x.dim(2) % f != 0 || x.dim(3) % f != 0)
    fail("AutoencoderKL.encode: height and width must be multiples of ", f, " (the VAE's scale factor), got ",
         x.dim(2), "×", x.dim(3));
  const Encoder& e = encoder_;
  Tensor h = e.conv_in.forward(placement_.in(x));
  for (const auto& block : e.down_blocks) {
    for (const auto& r : block.resnets) h = r.forward(h);
    if (block.downsampler) h = block.downsampler->forward(h);
  }
  h = e.mid_resnet_0.forward(h);
  if (e.mid_attention) h = e.mid_attention->forward(h);
  h = e.mid_resnet_1.forward(h);
  h = e.conv_out.forward(e.conv_norm_out.forward(h, act_));  // norm + activation in one pass
  if (quant_conv) h = quant_conv->forward(h);
  h = placement_.out(h);  // the split and clamp below read the (small) moments on the host
  // torch.chunk(moments, 2, dim=1), then logvar clamped to [-30, 20]
  const int64_t n = h.dim(0), c = config_.latent_channels, plane = c * h.dim(2) * h.dim(3);
  LatentDistribution d;
  d.mean = Tensor::empty({n, c, h.dim(2), h.dim(3)});
  d.logvar = Tensor::empty(d.mean.shape());
  for (int64_t b = 0; b < n; ++b) {
    const float* src = h.data<float>() + b * 2 * plane;
    std::memcpy(d.mean.data<float>() + b * plane, src, sizeof(float) * plane);
    float* lv = d.logvar.data<float>() + b * plane;
    for (int64_t i = 0; i < plane; ++i) lv[i] = std::clamp(src[plane + i], -30.0f, 20.0f);
  }
  return d;
}

Tensor LatentDistribution::std() const {
  Tensor s = Tensor::empty(logvar.shape());
  const float* lv = logvar.data<float>();
  for (int64_t i = 0; i < s.numel(); ++i) s.data<float>()[i] = std::exp(0.5f * lv[i]);
  return s;
}

Tensor LatentDistribution::sample(const Tensor& noise) const {
  if (noise.shape() != mean.shape())
    fail("LatentDistribution.sample: noise ", shape_str(noise.shape()), " for latents ", shape_str(mean.shape()));
  Tensor out = std();
  float* o = out.data<float>();
  for (int64_t i = 0; i < out.numel(); ++i) o[i] = mean.data<float>()[i] + o[i] * noise.data<float>()[i];
  return out;
}

Tensor AutoencoderKL::decode(const Tensor& z) const {
  if (z.ndim() != 4 || z.dim(1) != config_.latent_channels)
    fail("AutoencoderKL.decode: latents must be [N, ", config_.latent_channels, ", h, w], got ", shape_str(z.shape()));
  const Tensor latents = placement_.in(z);
  Tensor x = post_quant_conv ? post_quant_conv->forward(latents) : latents;
  x = conv_in.forward(x);
  x = mid_resnet_0.forward(x);
  if (mid_attention) x = mid_attention->forward(x);
  x = mid_resnet_1.forward(x);
  for (const auto& block : up_blocks) {
    for (const auto& r : block.resnets) x = r.forward(x);
    if (block.upsampler) x = block.upsampler->forward(ops::upsample_nearest2x(x));
  }
  return placement_.out(conv_out.forward(conv_norm_out.forward(x, act_)));  // norm + activation in one pass
}

}  // namespace mmx
