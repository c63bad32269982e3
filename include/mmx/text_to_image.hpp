// Image generation as diffusers' SDXL pipelines' __call__ (src/pipelines/text_to_image.cpp): a
// pipeline folder (model_index.json and its components, weight variants) loaded once, then prompt
// encoding, the denoising loop and the VAE decode per call.
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mmx/image.hpp"
#include "mmx/lora.hpp"
#include "mmx/placement.hpp"
#include "mmx/scheduler.hpp"
#include "mmx/tensor.hpp"

namespace mmx {

struct GenerateOptions {
  std::string prompt;
  std::optional<std::string> negative_prompt;  // none: zeros (force_zeros_for_empty_prompt), "" is encoded
  int64_t steps = 50;
  float guidance_scale = 5.0f;  // > 1: classifier-free guidance
  // Another sampler than the folder's, by diffusers class or A1111 name ("DDIM"), its scheduler_config.json's
  // other fields kept as diffusers' from_config keeps them (Scheduler::load); empty: the folder's own.
  std::string scheduler;
  // Scheduler config fields set over the folder's and the name's, as a JSON object ("" none): SDXL-Turbo's
  // {"timestep_spacing": "trailing"}.
  std::string scheduler_settings;
  // LoRA adapters merged into the text encoders and the UNet for this image (a set kept until another is asked).
  std::vector<LoraWeight> loras;
  std::optional<int64_t> width, height;  // default: the UNet's sample_size × the VAE's scale factor
  Tensor latents;  // initial latents [1, C, h, w] (before init_noise_sigma); undefined: drawn from `seed`
  uint64_t seed = 0;  // torch.Generator().manual_seed(seed), as diffusers' generator=
  // torch.Generator(device).manual_seed(seed) on the pipeline's device instead of the CPU's (`--rng cuda`:
  // torch's CUDA generator, drawn in the run's dtype as diffusers draws it).
  bool device_rng = false;
  bool keep_step_latents = false;
  // Image-to-image (StableDiffusionXLImg2ImgPipeline): the image is resized to width × height where those
  // are given (Pillow's Lanczos, as VaeImageProcessor), else cut to a multiple of 8 as diffusers does;
  // encoded by the VAE (a sample of its latent distribution, drawn from the seed's generator), noised to the
  // first kept timestep and denoised over the last strength · steps steps.
  std::optional<Image> image;
  // Inpainting (StableDiffusionXLInpaintPipeline): white repaints, black keeps (greyscale, binarised at
  // 0.5 after a Lanczos resize). An inpainting UNet (9 channels) takes the mask and the masked image's
  // latents; the 4-channel base blends the noised original back outside the mask after every step.
  // The size defaults to the UNet's (1024² for SDXL), as diffusers' inpainting pipeline does.
  std::optional<Image> mask;
  // Pillow's GaussianBlur of the mask before it is used (diffusers' mask_processor.blur, A1111's "mask
  // blur"): soft edges. 0: none (diffusers' default).
  float mask_blur = 0;
  // Inpaint only around the mask (diffusers' padding_mask_crop, A1111's "only masked"): the mask's bounding
  // box grown by this many pixels and to the output's aspect ratio is cut from the image, generated at full
  // size, and pasted back over the original where the mask is white.
  std::optional<int64_t> mask_padding;
  double strength = 0.3;  // (0, 1]: diffusers' img2img default (a double: int(steps · strength) as Python computes it)
  // The base → refiner hand-off ("ensemble of expert denoisers"): denoising_end stops the base before the
  // timestep (1 − end) · train_timesteps and returns its latents undecoded; denoising_start (with
  // start_latents, those latents) runs only the steps after it, without adding noise.
  std::optional<double> denoising_end, denoising_start;
  Tensor start_latents;
  // A refiner's micro-conditioning (folders with requires_aesthetics_score): the aesthetic score the
  // conditional and the unconditional batch halves ask for (diffusers' defaults).
  double aesthetic_score = 6.0, negative_aesthetic_score = 2.5;
  // The generator to draw from instead of a fresh one from `seed` (the refiner continues the base's).
  Scheduler::NoiseSource generator;
  // Called after each step with (step, steps, seconds the step took).
  std::function<void(int64_t, int64_t, double)> on_step;
  // Every `preview_every` UNet calls (0: never) before the last, the latents so far decoded by the VAE
  // (noisy early, the picture emerging): on_preview(calls done, image).
  int64_t preview_every = 0;
  std::function<void(int64_t, const Image&)> on_preview;
  // Called after the stages around the loop: ("adapters", seconds) when LoRA adapters were read and merged
  // (not when the set was already merged), ("prompt", seconds) once the prompt is encoded, ("decode",
  // seconds) once the VAE has decoded the image.
  std::function<void(const char*, double)> on_stage;
};

struct GenerateResult {
  Image image;  // empty when denoising_end stopped early: `latents` is the result
  Tensor latents;  // the last latents (before the VAE)
  Tensor init_latents;  // as given (before the init_noise_sigma scaling); from an image: noised, the loop's start
  Tensor step_latents;  // [calls, 1, C, h, w] after each UNet call's scheduler step (keep_step_latents)
  std::string scheduler;
};

// diffusers' SDXL pipelines in one: StableDiffusionXLPipeline (text), StableDiffusionXLImg2ImgPipeline
// (`image`, the refiner) and StableDiffusionXLInpaintPipeline (`image` + `mask`) — prompt encoding, the
// scheduler's loop with guidance, the VAE decode.
class SDXLPipeline {
 public:
  // The pipeline folder (or Hub id) at a placement; the VAE runs at its own dtype where diffusers upcasts it.
  static std::unique_ptr<SDXLPipeline> load(const std::string& folder, const std::string& variant = "",
                                            const Placement& placement = {});
  // What generate() would refuse, found from the folder's configs alone (no weight read): the folder, the
  // image size, the steps, given latents' shape, the scheduler, the weight files' presence.
  static void check(const std::string& folder, const GenerateOptions& options, const std::string& variant = "");
  // SDXL-Turbo's folder (stabilityai/sdxl-turbo): a scheduler with trailing timestep spacing and a 512²
  // UNet — its model card's 1 step at guidance 0 are the defaults that suit it.
  static bool is_turbo(const std::string& folder, const std::string& variant = "");
  virtual ~SDXLPipeline() = default;
  virtual GenerateResult generate(const GenerateOptions& options) const = 0;
  virtual int64_t default_size() const = 0;        // pixels
  virtual int64_t latent_channels() const = 0;
  virtual int64_t vae_scale_factor() const = 0;
};

}  // namespace mmx
