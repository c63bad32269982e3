// StableDiffusionXLPipeline.__call__ (diffusers 0.30): encode_prompt, the scheduler's denoising loop
// with classifier-free guidance over a batch of [unconditional, conditional], then the VAE decode and
// the image processor's postprocessing ((x / 2 + 0.5).clamp(0, 1), rounded to 8 bits).
#include <chrono>
#include <cmath>

#include "mmx/files.hpp"
#include "core/log.hpp"
#include "io/checkpoint.hpp"
#include "io/json_config.hpp"
#include "mmx/error.hpp"
#include "mmx/scheduler.hpp"
#include "mmx/torch_random.hpp"
#include "mmx/sdxl_prompt.hpp"
#include "mmx/text_to_image.hpp"
#include "pipelines/sdxl_folder.hpp"
#include "models/autoencoder_kl.hpp"
#include "models/unet2d_condition.hpp"
#include "models/weights.hpp"
#include "pipelines/step_runner.hpp"
#include "pipelines/torch_device_random.hpp"

namespace mmx {
namespace {

Tensor stack2(const Tensor& a, const Tensor& b) {  // torch.cat([a, b]) on dim 0
  Shape s = a.shape();
  s[0] += b.dim(0);
  Tensor y = Tensor::empty(s);
  std::copy_n(a.data<float>(), a.numel(), y.data<float>());
  std::copy_n(b.data<float>(), b.numel(), y.data<float>() + a.numel());
  return y;
}

// The VAE at its own placement: the pipeline's device, its own dtype.
AutoencoderKL load_vae(const DiffusersFolder& f, const std::string& variant, const Placement& placement) {
  return load_model<AutoencoderKL>(
      AutoencoderKLConfig::from_json(JsonObject::load(join_path(f.component("vae"), "config.json"))),
      Checkpoint::open(component_weights(f.component("vae"), "diffusion_pytorch_model", variant)), placement,
      HalfWeights::AsStored);
}

// diffusers upcasts the VAE to float32 for decoding when it would run in float16 and its config says
// force_upcast (SDXL's VAE overflows in f16); bf16 has f32's range and stays.
Placement vae_placement(const DiffusersFolder& f, const Placement& pipeline) {
  if (pipeline.dtype != DType::F16) return pipeline;
  const auto config = AutoencoderKLConfig::from_json(JsonObject::load(join_path(f.component("vae"), "config.json")));
  return {pipeline.device, config.force_upcast ? DType::F32 : DType::F16};
}

// The sizes a pipeline's UNet and VAE configs allow, known before any weight is read.
struct Geometry {
  int64_t vae_scale_factor, default_size, latent_channels;
};

Geometry geometry_of(const UNet2DConditionConfig& unet, const AutoencoderKLConfig& vae) {
  const int64_t factor = int64_t(1) << (vae.block_out_channels.size() - 1);
  return {factor, unet.sample_size * factor, unet.in_channels};
}

// The largest side accepted: SDXL is trained at 1024²; beyond 4096² the attention of a single step holds
// hundreds of GB and would run for hours (or fail to allocate) where a usage error is what helps.
constexpr int64_t kMaxSide = 4096;
constexpr float kMaxInitialLatent = 1000;

// Checks what the options ask against the geometry: sizes, steps, given latents. Returns the image size.
std::pair<int64_t, int64_t> checked_size(const GenerateOptions& o, const Geometry& g) {
  const int64_t width = o.width.value_or(g.default_size), height = o.height.value_or(g.default_size);
  const int64_t multiple = 8 * g.vae_scale_factor;
  if (width <= 0 || height <= 0 || width % multiple != 0 || height % multiple != 0)
    usage_error("width and height must be positive multiples of ", multiple, " (8 × the VAE's scale factor ",
                g.vae_scale_factor, "), got ", width, "×", height);
  if (width > kMaxSide || height > kMaxSide)
    usage_error("width and height are at most ", kMaxSide, " (this model is trained at ", g.default_size, "), got ", width,
                "×", height);
  if (o.steps < 1) usage_error("steps must be at least 1, got ", o.steps);
  const Shape latent_shape{1, g.latent_channels, height / g.vae_scale_factor, width / g.vae_scale_factor};
  if (o.latents.defined() && (o.latents.shape() != latent_shape || o.latents.dtype() != DType::F32))
    usage_error("initial latents must be F32 ", shape_str(latent_shape), " for ", width, "×", height, ", got ",
                dtype_name(o.latents.dtype()), " ", shape_str(o.latents.shape()));
  if (o.latents.defined()) {
    // Initial latents are a draw from N(0, 1) (diffusers scales them by the first sigma itself): a value
    // beyond ±1000 is no such draw, and would give a finite but meaningless image.
    const float* p = o.latents.data<float>();
    for (int64_t i = 0; i < o.latents.numel(); ++i)
      if (!std::isfinite(p[i]) || std::fabs(p[i]) > kMaxInitialLatent)
        usage_error("initial latents hold ", p[i], " at index ", i, ": they are noise drawn from N(0, 1), so every value is "
                    "finite and within ±", kMaxInitialLatent);
  }
  return {width, height};
}

Geometry folder_geometry(const DiffusersFolder& f) {
  return geometry_of(UNet2DConditionConfig::from_json(JsonObject::load(join_path(f.component("unet"), "config.json"))),
                     AutoencoderKLConfig::from_json(JsonObject::load(join_path(f.component("vae"), "config.json"))));
}

class SDXLPipelineImpl final : public SDXLPipeline {
 public:
  SDXLPipelineImpl(const DiffusersFolder& f, const std::string& variant, const Placement& placement)
      : folder_(f), variant_(variant), placement_(placement),
        text_(SDXLTextEncoders::load(f.path, variant, placement)),
        unet_(load_model<UNet2DConditionModel>(
            UNet2DConditionConfig::from_json(JsonObject::load(join_path(f.component("unet"), "config.json"))),
            Checkpoint::open(component_weights(f.component("unet"), "diffusion_pytorch_model", variant)), placement,
            HalfWeights::AsStored)),
        vae_placement_(vae_placement(f, placement)),
        vae_(load_vae(f, variant, vae_placement_)),
        scheduler_config_(join_path(f.component("scheduler"), "scheduler_config.json")) {
    Scheduler::load(scheduler_config_);  // a scheduler this mmx lacks is an error now, not at the first image
    if (vae_.config().latent_channels != unet_.config().in_channels)
      fail(f.path, ": the VAE has ", vae_.config().latent_channels, " latent channels and the UNet takes ",
           unet_.config().in_channels);
  }

  int64_t vae_scale_factor() const override { return vae_.scale_factor(); }
  int64_t default_size() const override { return unet_.config().sample_size * vae_scale_factor(); }
  int64_t latent_channels() const override { return unet_.config().in_channels; }

  GenerateResult generate(const GenerateOptions& o) const override {
    const auto [width, height] = checked_size(o, geometry_of(unet_.config(), vae_.config()));
    const Shape latent_shape{1, latent_channels(), height / vae_scale_factor(), width / vae_scale_factor()};
    // One generator for the whole image, as diffusers' generator=: it draws the initial latents, then the
    // fresh noise of an ancestral or SDE sampler's every step.
    Scheduler::NoiseSource draw;
    if (o.device_rng) {
      auto g = std::make_shared<TorchDeviceGenerator>(o.seed, placement_.device);
      draw = [g, dtype = placement_.dtype](const Shape& shape) { return g->randn(shape, dtype); };
    } else {
      auto g = std::make_shared<TorchGenerator>(o.seed);
      draw = [g](const Shape& shape) { return g->randn(shape); };
    }
    const Tensor initial = o.latents.defined() ? o.latents : draw(latent_shape);
    if (initial.shape() != latent_shape || initial.dtype() != DType::F32)
      usage_error("initial latents must be F32 ", shape_str(latent_shape), " for ", width, "×", height, ", got ",
                  dtype_name(initial.dtype()), " ", shape_str(initial.shape()));

    auto since = [](std::chrono::steady_clock::time_point t) {
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
    };
    auto stage_start = std::chrono::steady_clock::now();
    const SDXLPromptEmbeds p = text_->encode(o.prompt, o.negative_prompt);
    if (o.on_stage) o.on_stage("prompt", since(stage_start));
    const bool cfg = o.guidance_scale > 1.0f;  // do_classifier_free_guidance (no time_cond_proj_dim here)
    const Tensor time_ids = sdxl_add_time_ids(height, width, 0, 0, height, width);
    const Tensor context = cfg ? stack2(p.negative_prompt_embeds, p.prompt_embeds) : p.prompt_embeds;
    const Tensor text_embeds = cfg ? stack2(p.negative_pooled_prompt_embeds, p.pooled_prompt_embeds) : p.pooled_prompt_embeds;
    const Tensor ids = cfg ? stack2(time_ids, time_ids) : time_ids;

    const std::unique_ptr<Scheduler> scheduler = Scheduler::load(scheduler_config_, o.scheduler);
    scheduler->set_timesteps(o.steps);
    scheduler->set_noise_source(draw);
    // The UNet runs once per timestep: `steps` times, 2·steps − 1 for Heun (its corrector's timesteps).
    const int64_t calls = static_cast<int64_t>(scheduler->timesteps().size());
    GenerateResult r;
    r.scheduler = scheduler->class_name();
    r.init_latents = initial;
    Tensor latents = initial.clone();
    const float sigma0 = scheduler->init_noise_sigma();
    for (int64_t i = 0; i < latents.numel(); ++i) latents.data<float>()[i] *= sigma0;
    if (o.keep_step_latents) {
      Shape s = latent_shape;
      s.insert(s.begin(), calls);
      r.step_latents = Tensor::empty(s);
    }
    for (int64_t i = 0; i < calls; ++i) {
      const auto start = std::chrono::steady_clock::now();
      const Tensor scaled = scheduler->scale_model_input(cfg ? stack2(latents, latents) : latents, i);
      const UNet2DConditionModel::Inputs in = unet_.prepare(scaled, scheduler->timesteps()[size_t(i)], context, text_embeds, ids);
      const Tensor out = steps_.run({in.sample, in.time_features, in.add_features, in.context},
                                    [this](const std::vector<Tensor>& d) { return unet_.forward({d[0], d[1], d[2], d[3]}); });
      latents = scheduler->step(cfg ? classifier_free_guidance(out, o.guidance_scale) : out, i, latents);
      if (!all_finite(latents))
        fail("the denoising step ", i + 1, " of ", calls, " gave non-finite latents (the UNet's output went out of range: "
             "its weights, or too high a guidance scale); no image was written");
      if (o.keep_step_latents)
        std::copy_n(latents.data<float>(), latents.numel(), r.step_latents.data<float>() + i * latents.numel());
      if (o.on_step) o.on_step(i + 1, calls, since(start));
    }
    stage_start = std::chrono::steady_clock::now();
    r.image = decode(latents);
    if (o.on_stage) o.on_stage("decode", since(stage_start));
    return r;
  }

 private:
  Image decode(const Tensor& latents) const {
    const auto& c = vae_.config();
    Tensor z = latents.clone();
    const int64_t per = z.numel() / z.dim(1);
    for (int64_t ch = 0; ch < z.dim(1); ++ch)
      for (int64_t i = 0; i < per; ++i) {
        float& v = z.data<float>()[ch * per + i];
        if (!c.latents_mean.empty())  // latents · std / scaling_factor + mean
          v = v * static_cast<float>(c.latents_std[size_t(ch)]) / static_cast<float>(c.scaling_factor) +
              static_cast<float>(c.latents_mean[size_t(ch)]);
        else
          v = v / static_cast<float>(c.scaling_factor);
      }
    Tensor x = vae_.decode(z);
    if (!all_finite(x) && vae_placement_.dtype != DType::F32) {
      // A half-precision VAE overflowed: decode again in f32 rather than write a black image.
      log_warn("the VAE's ", dtype_name(vae_placement_.dtype), " decode gave non-finite values; decoding again in f32");
      x = load_vae(folder_, variant_, {placement_.device, DType::F32}).decode(z);
    }
    const int64_t channels = x.dim(1), h = x.dim(2), w = x.dim(3);
    if (channels != 3) fail("the VAE decodes ", channels, " channels; an RGB image needs 3");
    Image img;
    img.width = w;
    img.height = h;
    img.rgb.resize(static_cast<size_t>(w * h * 3));
    for (int64_t ch = 0; ch < 3; ++ch)
      for (int64_t i = 0; i < h * w; ++i) {
        const float v = x.data<float>()[ch * h * w + i];
        if (!std::isfinite(v))
          fail("the VAE decoded non-finite values: the latents went out of range (too high a guidance scale, or a model "
               "that needs float32 where it ran in lower precision); no image was written");
        const float pixel = std::clamp(v / 2 + 0.5f, 0.0f, 1.0f);
        img.rgb[size_t(i * 3 + ch)] = static_cast<uint8_t>(std::lround(pixel * 255.0f));
      }
    return img;
  }

  DiffusersFolder folder_;
  std::string variant_;
  Placement placement_;
  std::unique_ptr<SDXLTextEncoders> text_;
  UNet2DConditionModel unet_;
  Placement vae_placement_;
  AutoencoderKL vae_;
  std::string scheduler_config_;  // a fresh scheduler per image: multistep schedulers keep state
  mutable StepRunner steps_{placement_};  // the UNet's calls, recorded and replayed where the device can
};

}  // namespace

void SDXLPipeline::check(const std::string& folder, const GenerateOptions& options, const std::string& variant) {
  const DiffusersFolder f = open_sdxl_folder(folder, variant);
  checked_size(options, folder_geometry(f));
  const std::unique_ptr<Scheduler> scheduler =
      Scheduler::load(join_path(f.component("scheduler"), "scheduler_config.json"), options.scheduler);
  scheduler->set_timesteps(options.steps);  // refuses more steps than the schedule has
  component_weights(f.component("unet"), "diffusion_pytorch_model", variant);  // the weights are there
  component_weights(f.component("vae"), "diffusion_pytorch_model", variant);
}

std::unique_ptr<SDXLPipeline> SDXLPipeline::load(const std::string& folder, const std::string& variant,
                                                 const Placement& placement) {
  placement.check();
  const DiffusersFolder f = open_sdxl_folder(folder, variant);
  return std::make_unique<SDXLPipelineImpl>(f, variant, placement);
}

}  // namespace mmx
