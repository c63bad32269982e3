// The __call__ of diffusers 0.30's SDXL pipelines — text to image, image to image (and the refiner),
// inpainting: encode_prompt, prepare_latents (noise, or the VAE's sample of an image noised to the first
// kept timestep), the scheduler's denoising loop with classifier-free guidance over a batch of
// [unconditional, conditional], then the VAE decode and the image processor's postprocessing
// ((x / 2 + 0.5).clamp(0, 1), rounded to 8 bits).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <mutex>

#include "mmx/files.hpp"
#include "mmx/pil_filters.hpp"
#include "mmx/pil_resize.hpp"
#include "core/log.hpp"
#include "io/checkpoint.hpp"
#include "io/json_config.hpp"
#include "mmx/error.hpp"
#include "mmx/scheduler.hpp"
#include "mmx/torch_random.hpp"
#include "mmx/sdxl_prompt.hpp"
#include "mmx/text_to_image.hpp"
#include "pipelines/mask_crop.hpp"
#include "pipelines/sdxl_folder.hpp"
#include "models/autoencoder_kl.hpp"
#include "models/lora.hpp"
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
  return {factor, unet.sample_size * factor, vae.latent_channels};
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
  if (o.image && !(o.strength > 0 && o.strength <= 1))
    usage_error("strength must be in (0, 1] (the part of the steps run from the image), got ", o.strength);
  if (o.image && o.latents.defined()) usage_error("give an image or initial latents, not both");
  if (o.mask_padding && (!o.mask || *o.mask_padding < 0))
    usage_error("mask padding crops around a --mask: give --mask and a padding of 0 or more pixels");
  for (const auto& [name, value] : {std::pair{"denoising_end", o.denoising_end}, std::pair{"denoising_start", o.denoising_start}})
    if (value && !(*value > 0 && *value < 1)) usage_error(name, " must be in (0, 1) (a fraction of the schedule), got ", *value);
  if (o.denoising_start && o.denoising_end && *o.denoising_start >= *o.denoising_end)
    usage_error("denoising_start ", *o.denoising_start, " must come before denoising_end ", *o.denoising_end);
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

// torch.cat(tensors, dim=1) of [N, C_k, h, w] tensors.
Tensor concat_channels(const std::vector<Tensor>& parts) {
  Shape shape = parts[0].shape();
  shape[1] = 0;
  for (const Tensor& t : parts) shape[1] += t.dim(1);
  Tensor out = Tensor::empty(shape);
  const int64_t n = shape[0], plane = shape[2] * shape[3];
  float* y = out.data<float>();
  for (int64_t b = 0; b < n; ++b)
    for (const Tensor& t : parts) {
      const int64_t count = t.dim(1) * plane;
      y = std::copy_n(t.data<float>() + b * count, count, y);
    }
  return out;
}

// F.interpolate(mask, size=(h, w)) in its default 'nearest' mode: source index ⌊i · in / out⌋ in float.
Tensor nearest_downsample(const Tensor& mask, int64_t h, int64_t w) {
  const int64_t in_h = mask.dim(2), in_w = mask.dim(3);
  const float sy = static_cast<float>(in_h) / static_cast<float>(h), sx = static_cast<float>(in_w) / static_cast<float>(w);
  Tensor out = Tensor::empty({1, 1, h, w});
  for (int64_t y = 0; y < h; ++y) {
    const int64_t src_y = std::min(static_cast<int64_t>(std::floor(static_cast<float>(y) * sy)), in_h - 1);
    for (int64_t x = 0; x < w; ++x) {
      const int64_t src_x = std::min(static_cast<int64_t>(std::floor(static_cast<float>(x) * sx)), in_w - 1);
      out.data<float>()[y * w + x] = mask.data<float>()[src_y * in_w + src_x];
    }
  }
  return out;
}

// latents = (1 − mask) · proper + mask · latents, the mask broadcast over the channels, in torch's order.
void blend(Tensor& latents, const Tensor& proper, const Tensor& mask) {
  const int64_t plane = mask.numel(), channels = latents.numel() / plane;
  float* y = latents.data<float>();
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t i = 0; i < plane; ++i) {
      const float m = mask.data<float>()[i], keep = 1.0f - m;
      const float a = keep * proper.data<float>()[c * plane + i], b = m * y[c * plane + i];
      y[c * plane + i] = a + b;
    }
}

// The schedulers' index_for_timestep: where t stands in the schedule (its second place when it repeats,
// as Heun's corrector timesteps do).
int64_t index_for_timestep(const std::vector<float>& timesteps, float t) {
  std::vector<int64_t> at;
  for (size_t i = 0; i < timesteps.size(); ++i)
    if (timesteps[i] == t) at.push_back(static_cast<int64_t>(i));
  if (at.empty()) fail("timestep ", t, " is not in the schedule");
  return at.size() > 1 ? at[1] : at[0];
}

// img2img's size: the image's own, cut to a multiple of 8 (VaeImageProcessor.get_default_height_width),
// unless width and height are given; the refiner's: its starting latents'.
GenerateOptions with_image_size(GenerateOptions o, int64_t vae_scale_factor) {
  if (o.denoising_start && o.start_latents.defined() && o.start_latents.ndim() == 4) {
    if (!o.width) o.width = o.start_latents.dim(3) * vae_scale_factor;
    if (!o.height) o.height = o.start_latents.dim(2) * vae_scale_factor;
  } else if (o.image && !o.mask) {  // inpainting keeps the UNet's default size, as diffusers' pipeline does
    if (!o.width) o.width = o.image->width - o.image->width % vae_scale_factor;
    if (!o.height) o.height = o.image->height - o.image->height % vae_scale_factor;
  }
  return o;
}

// The step indices a call runs: diffusers' get_timesteps (strength, denoising_start) and the
// denoising_end cut, over the scheduler's timesteps (Heun's count twice).
struct StepRange {
  int64_t begin, end;
};
StepRange step_range(const Scheduler& s, const GenerateOptions& o) {
  const auto& t = s.timesteps();
  const int64_t count = static_cast<int64_t>(t.size()), order = s.order();
  const double n_train = static_cast<double>(s.num_train_timesteps());
  StepRange r{0, count};
  if (o.denoising_start) {
    const double cutoff = std::nearbyint(n_train - *o.denoising_start * n_train);  // Python's round()
    int64_t n = 0;
    for (float v : t) n += double(v) < cutoff;
    if (order == 2 && n % 2 == 0) ++n;
    r.begin = count - std::min(n, count);
  } else if (o.image) {  // image to image and inpainting
    const int64_t init = std::min(static_cast<int64_t>(double(o.steps) * o.strength), o.steps);
    r.begin = std::max(o.steps - init, int64_t(0)) * order;
  }
  if (o.denoising_end) {
    const double cutoff = std::nearbyint(n_train - *o.denoising_end * n_train);
    int64_t n = 0;
    for (int64_t i = r.begin; i < count; ++i) n += double(t[size_t(i)]) >= cutoff;
    r.end = r.begin + n;
  }
  if (r.end <= r.begin)
    usage_error("no denoising step is left to run: ", o.image && !o.denoising_start ? str("strength ", o.strength, " of ", o.steps, " steps") :
                str("denoising_start ", o.denoising_start.value_or(0), " / denoising_end ", o.denoising_end.value_or(1), " of ", o.steps, " steps"),
                " (give more steps or a higher strength)");
  return r;
}

// What a folder's layout cannot do: a refiner (no text_encoder) only continues an image; an inpainting
// UNet (2·latent + 1 input channels) needs the image and its mask.
void check_folder_use(const DiffusersFolder& f, int64_t unet_in_channels, int64_t latent_channels, const GenerateOptions& o) {
  if (!f.components.count("text_encoder") && !o.image && !o.denoising_start)
    usage_error(f.path, " is a refiner (", f.class_name, " without text_encoder): it continues an image — give --image, "
                "or use it as --refiner after a base model");
  if (unet_in_channels == 2 * latent_channels + 1 && !o.mask)
    usage_error(f.path, "'s UNet is an inpainting UNet (", unet_in_channels, " input channels): give --image and --mask");
}

Geometry folder_geometry(const DiffusersFolder& f) {
  return geometry_of(UNet2DConditionConfig::from_json(JsonObject::load(join_path(f.component("unet"), "config.json"))),
                     AutoencoderKLConfig::from_json(JsonObject::load(join_path(f.component("vae"), "config.json"))));
}

class SDXLPipelineImpl final : public SDXLPipeline {
 public:
  SDXLPipelineImpl(const DiffusersFolder& f, const std::string& variant, const Placement& placement)
      : folder_(f), variant_(variant), placement_(placement), weights_(open_text_encoder_weights(f, variant)),
        unet_config_(UNet2DConditionConfig::from_json(JsonObject::load(join_path(f.component("unet"), "config.json")))),
        vae_placement_(vae_placement(f, placement)),
        vae_(load_vae(f, variant, vae_placement_)),
        scheduler_config_(join_path(f.component("scheduler"), "scheduler_config.json")),
        requires_aesthetics_score_(f.index.get_bool("requires_aesthetics_score", false)) {
    weights_.emplace("unet", Checkpoint::open(component_weights(f.component("unet"), "diffusion_pytorch_model", variant)));
    base_ = build_denoiser(weights_, {});
    Scheduler::load(scheduler_config_);  // a scheduler this mmx lacks is an error now, not at the first image
    // A UNet takes the VAE's latents, or for inpainting (9 channels for SDXL) the latents, the mask and
    // the masked image's latents.
    const int64_t latent = vae_.config().latent_channels, in = unet_config_.in_channels;
    if (in != latent && in != 2 * latent + 1)
      fail(f.path, ": the VAE has ", latent, " latent channels and the UNet takes ", in, " (", latent, ", or ",
           2 * latent + 1, " for an inpainting UNet)");
    inpainting_unet_ = in == 2 * latent + 1;
  }

  int64_t vae_scale_factor() const override { return vae_.scale_factor(); }
  int64_t default_size() const override { return unet_config_.sample_size * vae_scale_factor(); }
  int64_t latent_channels() const override { return vae_.config().latent_channels; }

  GenerateResult generate(const GenerateOptions& given) const override {
    const GenerateOptions o = with_image_size(given, vae_scale_factor());
    const auto [width, height] = checked_size(o, geometry_of(unet_config_, vae_.config()));
    const Shape latent_shape{1, latent_channels(), height / vae_scale_factor(), width / vae_scale_factor()};
    check_folder_use(folder_, unet_config_.in_channels, latent_channels(), o);
    // The text encoders and UNet with the options' adapters merged in (the base's when there are none).
    const auto adapters_start = std::chrono::steady_clock::now();
    bool merged = false;
    const std::shared_ptr<const Denoiser> models = denoiser_for(o.loras, &merged);
    if (merged && o.on_stage)
      o.on_stage("adapters", std::chrono::duration<double>(std::chrono::steady_clock::now() - adapters_start).count());
    const UNet2DConditionModel& unet = models->unet;
    // One generator for the whole image, as diffusers' generator=: it draws the initial latents (or the
    // VAE's sample and the noise of image-to-image), then the fresh noise of an ancestral or SDE sampler.
    Scheduler::NoiseSource draw = o.generator;
    if (!draw && o.device_rng) {
      auto g = std::make_shared<TorchDeviceGenerator>(o.seed, placement_.device);
      draw = [g, dtype = placement_.dtype](const Shape& shape) { return g->randn(shape, dtype); };
    } else if (!draw) {
      auto g = std::make_shared<TorchGenerator>(o.seed);
      draw = [g](const Shape& shape) { return g->randn(shape); };
    }
    const std::unique_ptr<Scheduler> scheduler = Scheduler::load(scheduler_config_, o.scheduler, o.scheduler_settings);
    scheduler->set_timesteps(o.steps);
    scheduler->set_noise_source(draw);
    const StepRange range = step_range(*scheduler, o);

    GenerateResult r;
    r.scheduler = scheduler->class_name();
    Tensor latents;
    Inpainting inpaint;
    if (o.denoising_start) {  // the refiner's half: the base's latents, already at this noise level
      if (!o.start_latents.defined() || o.start_latents.shape() != latent_shape || o.start_latents.dtype() != DType::F32)
        usage_error("denoising_start continues from latents F32 ", shape_str(latent_shape), " (a base's output)");
      latents = o.start_latents.clone();
      r.init_latents = latents;
    } else if (o.mask) {  // StableDiffusionXLInpaintPipeline's prepare_latents and prepare_mask_latents
      inpaint = prepare_inpainting(o, *scheduler, range.begin, width, height, draw);
      latents = inpaint.latents;
      r.init_latents = latents;
    } else if (o.image) {  // prepare_latents: the VAE's sample, scaled, noised to the first kept timestep
      const Tensor clean = encode_image(*o.image, width, height, draw);
      latents = scheduler->add_noise(clean, draw(latent_shape), range.begin);
      r.init_latents = latents;
    } else {
      const Tensor initial = o.latents.defined() ? o.latents : draw(latent_shape);
      if (initial.shape() != latent_shape || initial.dtype() != DType::F32)
        usage_error("initial latents must be F32 ", shape_str(latent_shape), " for ", width, "×", height, ", got ",
                    dtype_name(initial.dtype()), " ", shape_str(initial.shape()));
      r.init_latents = initial;
      latents = initial.clone();
      const float sigma0 = scheduler->init_noise_sigma();
      for (int64_t i = 0; i < latents.numel(); ++i) latents.data<float>()[i] *= sigma0;
    }

    auto since = [](std::chrono::steady_clock::time_point t) {
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
    };
    auto stage_start = std::chrono::steady_clock::now();
    const SDXLPromptEmbeds p = models->text->encode(o.prompt, o.negative_prompt);
    if (o.on_stage) o.on_stage("prompt", since(stage_start));
    const bool cfg = o.guidance_scale > 1.0f;  // do_classifier_free_guidance (no time_cond_proj_dim here)
    // _get_add_time_ids: (original size, crop, target size), or with requires_aesthetics_score (a refiner)
    // (original size, crop, aesthetic score), the unconditional half with the negative score.
    const auto aesthetic = [h = height, w = width](double score) {  // (clang: no capture of structured bindings)
      return Tensor::from_vector(std::vector<float>{float(h), float(w), 0.0f, 0.0f, float(score)}, Shape{1, 5});
    };
    const Tensor time_ids = requires_aesthetics_score_ ? aesthetic(o.aesthetic_score) : sdxl_add_time_ids(height, width, 0, 0, height, width);
    const Tensor negative_time_ids = requires_aesthetics_score_ ? aesthetic(o.negative_aesthetic_score) : time_ids;
    const Tensor context = cfg ? stack2(p.negative_prompt_embeds, p.prompt_embeds) : p.prompt_embeds;
    const Tensor text_embeds = cfg ? stack2(p.negative_pooled_prompt_embeds, p.pooled_prompt_embeds) : p.pooled_prompt_embeds;
    const Tensor ids = cfg ? stack2(negative_time_ids, time_ids) : time_ids;

    // The UNet runs once per timestep kept: `steps` times for text to image, 2·steps − 1 for Heun (its
    // corrector's timesteps), fewer from an image or across a hand-off.
    const int64_t calls = range.end - range.begin;
    if (o.keep_step_latents) {
      Shape s = latent_shape;
      s.insert(s.begin(), calls);
      r.step_latents = Tensor::empty(s);
    }
    for (int64_t i = range.begin; i < range.end; ++i) {
      const auto start = std::chrono::steady_clock::now();
      Tensor scaled = scheduler->scale_model_input(cfg ? stack2(latents, latents) : latents, i);
      if (inpainting_unet_) scaled = concat_channels({scaled, cfg ? stack2(inpaint.mask, inpaint.mask) : inpaint.mask,
                                                      cfg ? stack2(inpaint.masked, inpaint.masked) : inpaint.masked});
      const UNet2DConditionModel::Inputs in = unet.prepare(scaled, scheduler->timesteps()[size_t(i)], context, text_embeds, ids);
      const Tensor out = models->steps.run({in.sample, in.time_features, in.add_features, in.context},
                                           [&unet](const std::vector<Tensor>& d) { return unet.forward({d[0], d[1], d[2], d[3]}); });
      latents = scheduler->step(cfg ? classifier_free_guidance(out, o.guidance_scale) : out, i, latents);
      if (o.mask && !inpainting_unet_) {
        // The 4-channel base keeps the original outside the mask: noised to the next timestep, blended in.
        const Tensor proper = i + 1 < range.end
                                  ? scheduler->add_noise(inpaint.image_latents, inpaint.noise,
                                                         index_for_timestep(scheduler->timesteps(), scheduler->timesteps()[size_t(i + 1)]))
                                  : inpaint.image_latents;
        blend(latents, proper, inpaint.mask);
      }
      const int64_t done = i - range.begin + 1;
      if (!all_finite(latents))
        fail("the denoising step ", done, " of ", calls, " gave non-finite latents (the UNet's output went out of range: "
             "its weights, or too high a guidance scale); no image was written");
      if (o.keep_step_latents)
        std::copy_n(latents.data<float>(), latents.numel(), r.step_latents.data<float>() + (done - 1) * latents.numel());
      if (o.on_step) o.on_step(done, calls, since(start));
      if (o.preview_every > 0 && o.on_preview && done % o.preview_every == 0 && done < calls) o.on_preview(done, decode(latents));
    }
    r.latents = latents;
    if (o.denoising_end) return r;  // the refiner decodes
    stage_start = std::chrono::steady_clock::now();
    r.image = decode(latents);
    if (inpaint.crop) r.image = apply_overlay(inpaint.mask_image, *o.image, r.image, *inpaint.crop);
    if (o.on_stage) o.on_stage("decode", since(stage_start));
    return r;
  }

 private:
  // The models adapters change, built over the component checkpoints (untouched weights stay in the files'
  // mappings, so building another set reads nothing again and costs only the merged modules).
  struct Denoiser {
    Denoiser(std::unique_ptr<SDXLTextEncoders> t, UNet2DConditionModel u, const Placement& p, std::vector<LoraWeight> l)
        : text(std::move(t)), unet(std::move(u)), steps(p), loras(std::move(l)) {}
    std::unique_ptr<SDXLTextEncoders> text;
    UNet2DConditionModel unet;
    mutable StepRunner steps;  // the UNet's calls, recorded and replayed where the device can
    std::vector<LoraWeight> loras;
  };

  std::shared_ptr<const Denoiser> build_denoiser(const std::map<std::string, Checkpoint>& weights, std::vector<LoraWeight> loras) const {
    return std::make_shared<const Denoiser>(load_sdxl_text_encoders(folder_, weights, placement_),
                                            load_model<UNet2DConditionModel>(unet_config_, weights.at("unet"), placement_, HalfWeights::AsStored),
                                            placement_, std::move(loras));
  }

  // The base models, or the last adapted set again, or a new set: the adapters' files read once (again when
  // they change on disk) and merged into copies of the checkpoints.
  std::shared_ptr<const Denoiser> denoiser_for(const std::vector<LoraWeight>& loras, bool* merged) const {
    if (loras.empty()) return base_;
    std::lock_guard<std::mutex> lock(adapted_mutex_);
    if (adapted_ && adapted_->loras == loras) return adapted_;
    adapted_.reset();  // its merged weights go before the next set's are made
    std::vector<WeightedLora> adapters;
    for (const LoraWeight& l : loras) {
      std::error_code ec;
      const auto mtime = std::filesystem::last_write_time(l.path, ec);
      if (ec) usage_error("LoRA ", l.path, ": ", ec.message());
      auto& cached = lora_files_[l.path];
      if (!cached.second || cached.first != mtime) cached = {mtime, LoraFile::open(l.path)};
      adapters.push_back({cached.second, l.weight});
    }
    std::vector<LoraTarget> targets;
    for (const auto& [component, checkpoint] : weights_)
      targets.push_back({component, &checkpoint, component == "unet" ? &unet_config_ : nullptr});
    std::map<std::string, Checkpoint> patched = weights_;
    for (auto& [component, tensors] : merge_loras(targets, adapters))
      for (auto& [name, tensor] : tensors) patched.at(component).replace(name, std::move(tensor), "LoRA");
    adapted_ = build_denoiser(patched, loras);
    *merged = true;
    for (auto it = lora_files_.begin(); it != lora_files_.end();)  // only the current set's files stay read
      it = std::any_of(loras.begin(), loras.end(), [&](const LoraWeight& l) { return l.path == it->first; }) ? std::next(it)
                                                                                                          : lora_files_.erase(it);
    return adapted_;
  }

  struct Inpainting {
    Tensor latents, noise, image_latents, mask, masked;  // mask [1, 1, h, w]; masked: the masked image's latents
    Image mask_image;             // the mask as used (blurred where asked)
    std::optional<CropBox> crop;  // mask_padding: the region generated
  };
  // prepare_latents + prepare_mask_latents, drawing from the generator in diffusers' order: the image's
  // VAE sample (for a 4-channel UNet, or below strength 1), the noise, the masked image's VAE sample.
  Inpainting prepare_inpainting(const GenerateOptions& o, const Scheduler& scheduler, int64_t begin, int64_t width,
                                int64_t height, const Scheduler::NoiseSource& draw) const {
    if (!o.image) usage_error("--mask needs the --image it masks");
    const Image mask = o.mask_blur > 0 ? gaussian_blur(*o.mask, o.mask_blur) : *o.mask;
    Inpainting p;
    Tensor x, full_mask;
    if (o.mask_padding) {  // resize_mode "fill" of the crop around the mask
      p.crop = mask_crop_region(mask, width, height, *o.mask_padding);
      x = preprocess_image(resize_and_fill(crop(*o.image, *p.crop), width, height), width, height);
      full_mask = preprocess_mask(resize_and_fill(crop(mask, *p.crop), width, height), width, height);
    } else {
      x = preprocess_image(*o.image, width, height);
      full_mask = preprocess_mask(mask, width, height);
    }
    p.mask_image = mask;
    Tensor masked_image = x.clone();  // init_image · (mask < 0.5)
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t i = 0; i < width * height; ++i)
        masked_image.data<float>()[c * width * height + i] *= full_mask.data<float>()[i] < 0.5f ? 1.0f : 0.0f;
    const bool strength_max = o.strength == 1.0;
    const Shape shape{1, latent_channels(), height / vae_scale_factor(), width / vae_scale_factor()};
    if (!inpainting_unet_ || !strength_max) p.image_latents = encode_pixels(x, draw);
    p.noise = draw(shape);
    if (strength_max) {
      p.latents = p.noise.clone();
      const float sigma0 = scheduler.init_noise_sigma();
      for (int64_t i = 0; i < p.latents.numel(); ++i) p.latents.data<float>()[i] *= sigma0;
    } else {
      p.latents = scheduler.add_noise(p.image_latents, p.noise, begin);
    }
    p.mask = nearest_downsample(full_mask, shape[2], shape[3]);
    p.masked = encode_pixels(masked_image, draw);
    return p;
  }

  // VaeImageProcessor.preprocess: resized with Lanczos when its size differs, x / 255 · 2 − 1 in float32.
  static Tensor preprocess_image(const Image& image, int64_t width, int64_t height) {
    const Image sized = image.width == width && image.height == height ? image : resize(image, width, height, Resample::Lanczos);
    Tensor x = Tensor::empty({1, 3, height, width});
    float* px = x.data<float>();
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t i = 0; i < width * height; ++i) {
        const float v = static_cast<float>(sized.rgb[size_t(i * 3 + c)]) / 255.0f;
        px[c * width * height + i] = 2.0f * v - 1.0f;
      }
    return x;
  }

  // The mask processor (do_convert_grayscale, do_binarize, no normalisation): resized with Lanczos, then
  // Pillow's convert("L"), / 255, then 0 below 0.5 and 1 from it.
  static Tensor preprocess_mask(const Image& mask, int64_t width, int64_t height) {
    const Image sized = mask.width == width && mask.height == height ? mask : resize(mask, width, height, Resample::Lanczos);
    Tensor m = Tensor::empty({1, 1, height, width});
    for (int64_t i = 0; i < width * height; ++i)
      m.data<float>()[i] = static_cast<float>(pillow_luma(sized, i)) / 255.0f < 0.5f ? 0.0f : 1.0f;
    return m;
  }

  // vae.encode(x).latent_dist.sample(generator), then prepare_latents' scaling.
  Tensor encode_pixels(const Tensor& x, const Scheduler::NoiseSource& draw) const {
    const LatentDistribution dist = vae_.encode(vae_placement_.device.is_cpu() ? x : x.to(vae_placement_.device));
    const Tensor mean = dist.mean.to(Device::cpu()).to(DType::F32);
    LatentDistribution host{mean, dist.logvar.to(Device::cpu()).to(DType::F32)};
    Tensor z = host.sample(draw(mean.shape()));
    const auto& c = vae_.config();
    const int64_t per = z.numel() / z.dim(1);
    for (int64_t ch = 0; ch < z.dim(1); ++ch)
      for (int64_t i = 0; i < per; ++i) {
        float& v = z.data<float>()[ch * per + i];
        if (!c.latents_mean.empty())  // (latents − mean) · scaling_factor / std
          v = (v - static_cast<float>(c.latents_mean[size_t(ch)])) * static_cast<float>(c.scaling_factor) /
              static_cast<float>(c.latents_std[size_t(ch)]);
        else
          v = static_cast<float>(c.scaling_factor) * v;
      }
    return z;
  }

  Tensor encode_image(const Image& image, int64_t width, int64_t height, const Scheduler::NoiseSource& draw) const {
    return encode_pixels(preprocess_image(image, width, height), draw);
  }

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
  std::map<std::string, Checkpoint> weights_;  // text_encoder(_2), unet: open (mapped) while the pipeline lives
  UNet2DConditionConfig unet_config_;
  Placement vae_placement_;
  AutoencoderKL vae_;
  std::string scheduler_config_;  // a fresh scheduler per image: multistep schedulers keep state
  bool requires_aesthetics_score_;
  bool inpainting_unet_ = false;
  std::shared_ptr<const Denoiser> base_;
  mutable std::mutex adapted_mutex_;
  mutable std::shared_ptr<const Denoiser> adapted_;
  mutable std::map<std::string, std::pair<std::filesystem::file_time_type, std::shared_ptr<const LoraFile>>> lora_files_;
};

}  // namespace

void SDXLPipeline::check(const std::string& folder, const GenerateOptions& options, const std::string& variant) {
  const DiffusersFolder f = open_sdxl_folder(folder, variant);
  const Geometry g = folder_geometry(f);
  const auto unet = UNet2DConditionConfig::from_json(JsonObject::load(join_path(f.component("unet"), "config.json")));
  check_folder_use(f, unet.in_channels, g.latent_channels, options);
  checked_size(with_image_size(options, g.vae_scale_factor), g);
  const std::unique_ptr<Scheduler> scheduler =
      Scheduler::load(join_path(f.component("scheduler"), "scheduler_config.json"), options.scheduler, options.scheduler_settings);
  scheduler->set_timesteps(options.steps);  // refuses more steps than the schedule has
  component_weights(f.component("unet"), "diffusion_pytorch_model", variant);  // the weights are there
  for (const LoraWeight& l : options.loras) LoraFile::open(l.path);  // an adapter's format, before the weights load
  component_weights(f.component("vae"), "diffusion_pytorch_model", variant);
}

bool SDXLPipeline::is_turbo(const std::string& folder, const std::string& variant) {
  const DiffusersFolder f = open_sdxl_folder(folder, variant);
  const JsonObject scheduler = JsonObject::load(join_path(f.component("scheduler"), "scheduler_config.json"));
  return scheduler.get_string("timestep_spacing", "leading") == "trailing" && folder_geometry(f).default_size == 512;
}

std::unique_ptr<SDXLPipeline> SDXLPipeline::load(const std::string& folder, const std::string& variant,
                                                 const Placement& placement) {
  placement.check();
  // int8 is for the encoders: no quality bound of the UNet's int8 latents has been measured to hold.
  if (placement.dtype == DType::I8)
    throw Error(ErrorKind::Usage, "int8 is for the text and image encoders, not SDXL generation",
                "generate with --dtype bf16 (the CPU's bf16 units) or f32");
  const DiffusersFolder f = open_sdxl_folder(folder, variant);
  return std::make_unique<SDXLPipelineImpl>(f, variant, placement);
}

}  // namespace mmx
