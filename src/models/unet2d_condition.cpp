// UNet2DConditionModel.forward of diffusers 0.30, module by module: time embedding (+ text_time
// embedding), conv_in, down blocks keeping their skip outputs, the mid block, up blocks concatenating
// the skips, norm, act, conv_out.
#include "models/unet2d_condition.hpp"

#include <algorithm>
#include <cmath>
#include <map>

#include "mmx/error.hpp"
#include "models/blocks/layout.hpp"

namespace mmx {

namespace {

std::vector<int64_t> per_block(const JsonObject& j, const std::string& key, int64_t fallback, size_t blocks,
                               IntLimits limits) {
  if (!j.has(key)) return std::vector<int64_t>(blocks, fallback);
  const auto& v = j.json().at(key);
  if (v.is_number_integer()) return std::vector<int64_t>(blocks, j.get_int(key, fallback, limits));
  if (!v.is_array() || v.size() != blocks) fail(j.source(), ": ", key, " must be an integer or a list of ", blocks);
  std::vector<int64_t> out;
  for (const auto& e : v) {
    if (e.is_array()) fail(j.source(), ": ", key, " must hold integers (nested lists are not supported)");
    out.push_back(j.int_element(key, e, limits));
  }
  return out;
}

std::vector<std::string> strings(const JsonObject& j, const std::string& key, std::vector<std::string> fallback) {
  if (!j.has(key)) return fallback;
  const auto& v = j.json().at(key);
  if (!v.is_array()) fail(j.source(), ": ", key, " must be a list of names");
  std::vector<std::string> out;
  for (const auto& e : v) {
    if (!e.is_string()) fail(j.source(), ": ", key, " must be a list of names");
    out.push_back(e.get<std::string>());
  }
  return out;
}

void require_unset(const JsonObject& j, const std::string& key) {
  if (j.has(key)) fail(j.source(), ": ", key, " is set; this mmx implements UNet2DConditionModel without it");
}

void require_value(const JsonObject& j, const std::string& key, const std::string& value) {
  if (j.has(key) && j.get_string(key, value) != value)
    fail(j.source(), ": ", key, " '", j.get_string(key, value), "' is not supported (", value, ")");
}

// [B, Ca, H, W] ++ [B, Cb, H, W] on the channel axis (torch.cat(dim=1)).
Tensor cat_channels(const Tensor& a, const Tensor& b) {
  if (a.dim(0) != b.dim(0) || a.dim(2) != b.dim(2) || a.dim(3) != b.dim(3))
    fail("UNet: skip connection ", shape_str(b.shape()), " does not fit ", shape_str(a.shape()));
  return ops::concat1(a, b);
}

// diffusers' Attention with AttnProcessor2_0: to_q/to_k/to_v without bias, to_out.0 with bias.
struct CrossAttention {
  Linear to_q, to_k, to_v, to_out;
  int64_t heads = 1;
  CrossAttention(const WeightView& w, int64_t dim, int64_t context_dim, int64_t heads)
      : to_q(w.sub("to_q"), dim, dim, false), to_k(w.sub("to_k"), context_dim, dim, false),
        to_v(w.sub("to_v"), context_dim, dim, false), to_out(w.sub("to_out", 0), dim, dim), heads(heads) {}
  // residual + to_out(attention), the residual added inside to_out's GEMM.
  Tensor forward(const Tensor& x, const Tensor& context, const Tensor& residual) const {
    return to_out.forward(ops::attention(to_q.forward(x), to_k.forward(context), to_v.forward(context), heads, Tensor(), false),
                          {residual, ops::Activation::Identity});
  }
};

// BasicTransformerBlock (layer_norm): self-attention, cross-attention, GEGLU feed-forward, each residual.
struct BasicTransformerBlock {
  LayerNorm norm1, norm2, norm3;
  CrossAttention attn1, attn2;
  Linear ff_proj, ff_out;  // ff.net.0.proj (dim → 2·inner), ff.net.2 (inner → dim)
  int64_t inner;
  BasicTransformerBlock(const WeightView& w, int64_t dim, int64_t heads, int64_t context_dim)
      : norm1(w.sub("norm1"), dim, 1e-5), norm2(w.sub("norm2"), dim, 1e-5), norm3(w.sub("norm3"), dim, 1e-5),
        attn1(w.sub("attn1"), dim, dim, heads), attn2(w.sub("attn2"), dim, context_dim, heads),
        ff_proj(w.sub("ff").sub("net", 0).sub("proj"), dim, dim * 8), ff_out(w.sub("ff").sub("net", 2), dim * 4, dim),
        inner(dim * 4) {}
  Tensor forward(Tensor x, const Tensor& context) const {
    const Tensor n1 = norm1.forward(x);
    x = attn1.forward(n1, n1, x);
    x = attn2.forward(norm2.forward(x), context, x);
    return ff_out.forward(geglu(ff_proj.forward(norm3.forward(x))), {x, ops::Activation::Identity});
  }
  // hidden, gate = proj(x).chunk(2, -1); hidden · gelu(gate) (erf form)
  static Tensor geglu(const Tensor& projected) { return ops::geglu(projected); }
};

}  // namespace

// Transformer2DModel (continuous input): group norm, projection in (linear or 1×1 conv), the blocks,
// projection out, residual.
class SpatialTransformer {
 public:
  SpatialTransformer(const WeightView& w, int64_t channels, int64_t heads, int64_t layers, int64_t context_dim,
                     int64_t groups, bool linear_projection)
      : norm_(w.sub("norm"), groups, channels, 1e-6), linear_(linear_projection) {
    if (channels % heads != 0) fail("UNet: ", channels, " channels do not split into ", heads, " attention heads");
    if (linear_) {
      proj_in_ = Linear(w.sub("proj_in"), channels, channels);
      proj_out_ = Linear(w.sub("proj_out"), channels, channels);
    } else {
      conv_in_ = Conv2d(w.sub("proj_in"), channels, channels, 1);
      conv_out_ = Conv2d(w.sub("proj_out"), channels, channels, 1);
    }
    for (int64_t i = 0; i < layers; ++i) blocks_.emplace_back(w.sub("transformer_blocks", i), channels, heads, context_dim);
  }
  Tensor forward(const Tensor& x, const Tensor& context) const {
    const int64_t h = x.dim(2), w = x.dim(3);
    Tensor t = norm_.forward(x);
    t = linear_ ? proj_in_.forward(channels_to_tokens(t)) : channels_to_tokens(conv_in_.forward(t));
    for (const auto& b : blocks_) t = b.forward(std::move(t), context);
    Tensor out = linear_ ? tokens_to_channels(proj_out_.forward(t), h, w) : conv_out_.forward(tokens_to_channels(t, h, w));
    ops::add_(out, x);
    return out;
  }

 private:
  GroupNorm norm_;
  bool linear_;
  Linear proj_in_, proj_out_;
  Conv2d conv_in_, conv_out_;
  std::vector<BasicTransformerBlock> blocks_;
};

UNet2DConditionConfig UNet2DConditionConfig::from_json(const JsonObject& j) {
  UNet2DConditionConfig c;
  c.in_channels = j.get_int("in_channels", c.in_channels, limits::kWidth);
  c.out_channels = j.get_int("out_channels", c.out_channels, limits::kWidth);
  c.sample_size = j.get_int("sample_size", c.sample_size, limits::kImageSide);
  if (j.has("block_out_channels")) {
    const size_t blocks = j.json().at("block_out_channels").is_array() ? j.json().at("block_out_channels").size() : 0;
    if (blocks == 0 || blocks > 16) fail(j.source(), ": block_out_channels must list 1 to 16 widths, one per resolution");
    c.block_out_channels = per_block(j, "block_out_channels", 0, blocks, limits::kWidth);
  }
  const size_t n = c.block_out_channels.size();
  c.down_block_types = strings(j, "down_block_types", {"CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"});
  c.up_block_types = strings(j, "up_block_types", {"UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"});
  if (c.down_block_types.size() != n || c.up_block_types.size() != n)
    fail(j.source(), ": ", c.down_block_types.size(), " down and ", c.up_block_types.size(), " up block types for ", n,
         " block_out_channels");
  for (const auto& t : c.down_block_types)
    if (t != "DownBlock2D" && t != "CrossAttnDownBlock2D") fail(j.source(), ": down block type '", t, "' is not supported");
  for (const auto& t : c.up_block_types)
    if (t != "UpBlock2D" && t != "CrossAttnUpBlock2D") fail(j.source(), ": up block type '", t, "' is not supported");
  c.mid_block_type = j.get_string("mid_block_type", c.mid_block_type);
  if (c.mid_block_type != "UNetMidBlock2DCrossAttn") fail(j.source(), ": mid_block_type '", c.mid_block_type, "' is not supported");
  c.layers_per_block = per_block(j, "layers_per_block", 2, n, limits::kLayers);
  c.transformer_layers_per_block = per_block(j, "transformer_layers_per_block", 1, n, limits::kLayers);
  if (j.has("reverse_transformer_layers_per_block"))
    fail(j.source(), ": reverse_transformer_layers_per_block is not supported");
  // diffusers: num_attention_heads = num_attention_heads or attention_head_dim (the config's historical name).
  c.num_attention_heads = j.has("num_attention_heads") ? per_block(j, "num_attention_heads", 8, n, limits::kHeads)
                                                      : per_block(j, "attention_head_dim", 8, n, limits::kHeads);
  c.cross_attention_dim = per_block(j, "cross_attention_dim", 1280, n, limits::kWidth);
  c.norm_num_groups = j.get_int("norm_num_groups", c.norm_num_groups, limits::kGroups);
  c.norm_eps = j.get_float("norm_eps", c.norm_eps, limits::kEpsilon);
  c.conv_in_kernel = j.get_int("conv_in_kernel", c.conv_in_kernel, limits::kKernel);
  c.conv_out_kernel = j.get_int("conv_out_kernel", c.conv_out_kernel, limits::kKernel);
  c.downsample_padding = j.get_int("downsample_padding", c.downsample_padding, {0, 7, "padding of a stride-2 convolution is 0 to 7"});
  c.mid_block_scale_factor = j.get_float("mid_block_scale_factor", c.mid_block_scale_factor, limits::kPositiveScale);
  c.act_fn = j.get_string("act_fn", c.act_fn);
  c.flip_sin_to_cos = j.get_bool("flip_sin_to_cos", c.flip_sin_to_cos);
  c.freq_shift = j.get_float("freq_shift", c.freq_shift, {0, 1, false, "diffusers shifts the timestep frequencies by 0 or 1"});
  c.use_linear_projection = j.get_bool("use_linear_projection", c.use_linear_projection);
  c.addition_embed_type = j.get_string("addition_embed_type", "");
  if (!c.addition_embed_type.empty() && c.addition_embed_type != "text_time")
    fail(j.source(), ": addition_embed_type '", c.addition_embed_type, "' is not supported (text_time)");
  if (c.addition_embed_type == "text_time") {
    c.addition_time_embed_dim = j.require_int("addition_time_embed_dim", limits::kWidth);
    c.projection_class_embeddings_input_dim = j.require_int("projection_class_embeddings_input_dim", limits::kWidth);
  }
  for (const char* key : {"class_embed_type", "encoder_hid_dim_type", "time_cond_proj_dim", "time_embedding_dim",
                          "time_embedding_act_fn", "timestep_post_act", "cross_attention_norm", "num_class_embeds"})
    require_unset(j, key);
  require_value(j, "resnet_time_scale_shift", "default");
  require_value(j, "time_embedding_type", "positional");
  require_value(j, "attention_type", "default");
  for (const char* key : {"only_cross_attention", "dual_cross_attention", "center_input_sample", "resnet_skip_time_act",
                          "mid_block_only_cross_attention", "class_embeddings_concat"})
    if (j.has(key) && (!j.json().at(key).is_boolean() || j.json().at(key).get<bool>()))
      fail(j.source(), ": ", key, " is set; this mmx implements UNet2DConditionModel without it");
  if (j.get_float("resnet_out_scale_factor", 1.0, limits::kPositiveScale) != 1.0 || c.mid_block_scale_factor != 1.0)
    fail(j.source(), ": output scale factors other than 1 are not supported");
  for (int64_t ch : c.block_out_channels)
    if (ch % c.norm_num_groups != 0)  // each width is at least 1 (read against limits::kWidth)
      fail(j.source(), ": block_out_channels ", ch, " do not split into norm_num_groups ", c.norm_num_groups);
  return c;
}

Tensor timestep_embedding(const std::vector<float>& timesteps, int64_t dim, bool flip_sin_to_cos, double freq_shift) {
  const int64_t half = dim / 2, n = static_cast<int64_t>(timesteps.size());
  std::vector<float> freq(static_cast<size_t>(half));
  const float log_period = static_cast<float>(-std::log(10000.0)), denom = static_cast<float>(half - freq_shift);
  for (int64_t i = 0; i < half; ++i) freq[size_t(i)] = std::exp(log_period * static_cast<float>(i) / denom);
  Tensor emb = Tensor::zeros({n, dim});
  for (int64_t r = 0; r < n; ++r)
    for (int64_t i = 0; i < half; ++i) {
      const float a = timesteps[size_t(r)] * freq[size_t(i)];
      float* row = emb.data<float>() + r * dim;
      row[flip_sin_to_cos ? half + i : i] = std::sin(a);
      row[flip_sin_to_cos ? i : half + i] = std::cos(a);
    }
  return emb;  // an odd dim keeps a zero last column (F.pad)
}

UNet2DConditionModel::UNet2DConditionModel(const UNet2DConditionConfig& c, WeightLoader& weights)
    : config_(c), act_(ops::activation_from_name(c.act_fn)), placement_(weights.placement()) {
  const WeightView w(weights);
  const auto& ch = c.block_out_channels;
  const int64_t temb = c.time_embed_dim(), g = c.norm_num_groups, nb = static_cast<int64_t>(ch.size());
  conv_in = Conv2d(w.sub("conv_in"), c.in_channels, ch[0], c.conv_in_kernel, 1, (c.conv_in_kernel - 1) / 2);
  time_linear_1 = Linear(w.sub("time_embedding").sub("linear_1"), ch[0], temb);
  time_linear_2 = Linear(w.sub("time_embedding").sub("linear_2"), temb, temb);
  if (c.addition_embed_type == "text_time") {
    add_linear_1 = Linear(w.sub("add_embedding").sub("linear_1"), c.projection_class_embeddings_input_dim, temb);
    add_linear_2 = Linear(w.sub("add_embedding").sub("linear_2"), temb, temb);
  }
  auto transformer = [&](const WeightView& v, int64_t channels, int64_t i, int64_t layers) {
    return std::make_unique<SpatialTransformer>(v, channels, c.num_attention_heads[size_t(i)], layers,
                                                c.cross_attention_dim[size_t(i)], g, c.use_linear_projection);
  };
  int64_t out = ch[0];
  for (int64_t i = 0; i < nb; ++i) {
    const int64_t in = out;
    out = ch[size_t(i)];
    const WeightView b = w.sub("down_blocks", i);
    const bool cross = c.down_block_types[size_t(i)] == "CrossAttnDownBlock2D";
    Block block;
    for (int64_t j = 0; j < c.layers_per_block[size_t(i)]; ++j) {
      block.resnets.emplace_back(b.sub("resnets", j), j == 0 ? in : out, out, g, c.norm_eps, act_, temb);
      if (cross) block.attentions.push_back(transformer(b.sub("attentions", j), out, i, c.transformer_layers_per_block[size_t(i)]));
    }
    if (i + 1 < nb) block.downsampler.emplace(b.sub("downsamplers", 0), out, out, c.downsample_padding);
    down_blocks.push_back(std::move(block));
  }
  {
    const WeightView m = w.sub("mid_block");
    const int64_t top = ch.back();
    mid_block.resnets.emplace_back(m.sub("resnets", 0), top, top, g, c.norm_eps, act_, temb);
    mid_block.attentions.push_back(transformer(m.sub("attentions", 0), top, nb - 1, c.transformer_layers_per_block.back()));
    mid_block.resnets.emplace_back(m.sub("resnets", 1), top, top, g, c.norm_eps, act_, temb);
  }
  out = ch.back();
  for (int64_t i = 0; i < nb; ++i) {
    const int64_t r = nb - 1 - i;  // the matching down block
    const int64_t prev = out, in = ch[size_t(std::max<int64_t>(r - 1, 0))];
    out = ch[size_t(r)];
    const WeightView b = w.sub("up_blocks", i);
    const bool cross = c.up_block_types[size_t(i)] == "CrossAttnUpBlock2D";
    const int64_t layers = c.layers_per_block[size_t(r)] + 1;
    Block block;
    for (int64_t j = 0; j < layers; ++j) {
      const int64_t skip = j == layers - 1 ? in : out, res_in = j == 0 ? prev : out;
      block.resnets.emplace_back(b.sub("resnets", j), res_in + skip, out, g, c.norm_eps, act_, temb);
      if (cross) block.attentions.push_back(transformer(b.sub("attentions", j), out, r, c.transformer_layers_per_block[size_t(r)]));
    }
    if (i + 1 < nb) block.upsampler.emplace(b.sub("upsamplers", 0).sub("conv"), out, out, 3, 1, 1);
    up_blocks.push_back(std::move(block));
  }
  conv_norm_out = GroupNorm(w.sub("conv_norm_out"), g, ch[0], c.norm_eps);
  conv_out = Conv2d(w.sub("conv_out"), ch[0], c.out_channels, c.conv_out_kernel, 1, (c.conv_out_kernel - 1) / 2);
  weights.finish("UNet2DConditionModel");
}

UNet2DConditionModel::~UNet2DConditionModel() = default;
UNet2DConditionModel::UNet2DConditionModel(UNet2DConditionModel&&) noexcept = default;

Tensor UNet2DConditionModel::time_embedding(const Tensor& t_emb, const Linear& l1, const Linear& l2) const {
  Tensor h = l1.forward(t_emb);  // TimestepEmbedding: linear_1, act, linear_2
  ops::activation_(h, act_);
  return l2.forward(h);
}

UNet2DConditionModel::Inputs UNet2DConditionModel::prepare(const Tensor& sample, float timestep, const Tensor& context,
                                                           const Tensor& text_embeds, const Tensor& time_ids) const {
  const auto& c = config_;
  if (sample.ndim() != 4 || sample.dim(1) != c.in_channels)
    fail("UNet: sample must be [B, ", c.in_channels, ", h, w], got ", shape_str(sample.shape()));
  const int64_t factor = int64_t(1) << (c.block_out_channels.size() - 1), batch = sample.dim(0);
  if (sample.dim(2) % factor != 0 || sample.dim(3) % factor != 0)
    fail("UNet: latents ", sample.dim(2), "×", sample.dim(3), " are not multiples of ", factor,
         " (the UNet halves them ", c.block_out_channels.size() - 1, " times)");
  if (context.ndim() != 3 || context.dim(0) != batch)
    fail("UNet: encoder_hidden_states must be [", batch, ", T, C], got ", shape_str(context.shape()));
  // The sinusoidal embeddings are computed on the host (a few KB) and moved to the device.
  Inputs host;
  host.sample = sample;
  host.context = context;
  host.time_features = timestep_embedding(std::vector<float>(size_t(batch), timestep), c.block_out_channels[0],
                                          c.flip_sin_to_cos, c.freq_shift);
  if (c.addition_embed_type == "text_time") {
    if (!text_embeds.defined() || !time_ids.defined() || text_embeds.dim(0) != batch || time_ids.dim(0) != batch)
      fail("UNet: addition_embed_type text_time needs text_embeds and time_ids for the batch of ", batch);
    const int64_t p = text_embeds.dim(1), ids = time_ids.dim(1), d = c.addition_time_embed_dim;
    if (p + ids * d != c.projection_class_embeddings_input_dim)
      fail("UNet: text_embeds ", p, " + ", ids, " time ids × ", d, " ≠ projection_class_embeddings_input_dim ",
           c.projection_class_embeddings_input_dim);
    const Tensor time_emb = timestep_embedding(std::vector<float>(time_ids.data<float>(), time_ids.data<float>() + batch * ids), d,
                                               c.flip_sin_to_cos, c.freq_shift);
    Tensor add = Tensor::empty({batch, p + ids * d});
    for (int64_t b = 0; b < batch; ++b) {
      std::copy_n(text_embeds.data<float>() + b * p, p, add.data<float>() + b * (p + ids * d));
      std::copy_n(time_emb.data<float>() + b * ids * d, ids * d, add.data<float>() + b * (p + ids * d) + p);
    }
    host.add_features = add;
  }
  return host;
}

Tensor UNet2DConditionModel::forward(const Tensor& sample, float timestep, const Tensor& context,
                                     const Tensor& text_embeds, const Tensor& time_ids) const {
  const Inputs host = prepare(sample, timestep, context, text_embeds, time_ids);
  return placement_.out(forward({placement_.in(host.sample), placement_.in(host.time_features),
                                 placement_.in(host.add_features), placement_.in(host.context)}));
}

Tensor UNet2DConditionModel::forward(const Inputs& in) const {
  Tensor emb = time_embedding(in.time_features, time_linear_1, time_linear_2);
  if (in.add_features.defined()) ops::add_(emb, time_embedding(in.add_features, add_linear_1, add_linear_2));
  const Tensor& context_on_device = in.context;
  Tensor x = conv_in.forward(in.sample);
  std::vector<Tensor> skips = {x};
  for (const auto& block : down_blocks) {
    for (size_t j = 0; j < block.resnets.size(); ++j) {
      x = block.resnets[j].forward(x, emb);
      if (!block.attentions.empty()) x = block.attentions[j]->forward(x, context_on_device);
      skips.push_back(x);
    }
    if (block.downsampler) {
      x = block.downsampler->forward(x);
      skips.push_back(x);
    }
  }
  x = mid_block.resnets[0].forward(x, emb);
  x = mid_block.attentions[0]->forward(x, context_on_device);
  x = mid_block.resnets[1].forward(x, emb);
  for (const auto& block : up_blocks) {
    for (size_t j = 0; j < block.resnets.size(); ++j) {
      x = block.resnets[j].forward(cat_channels(x, skips.back()), emb);
      skips.pop_back();
      if (!block.attentions.empty()) x = block.attentions[j]->forward(x, context_on_device);
    }
    if (block.upsampler) x = block.upsampler->forward(ops::upsample_nearest2x(x));
  }
  return conv_out.forward(conv_norm_out.forward(x, act_));  // norm + activation in one pass
}

}  // namespace mmx
