// Stable Diffusion XL, as diffusers' StableDiffusionXLPipeline: the pipeline folder (model_index.json and
// its components, weight variants) and prompt encoding. The UNet, the VAE and generation follow.
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "mmx/image.hpp"
#include "mmx/tensor.hpp"

namespace mmx {

// A diffusers pipeline folder: model_index.json naming each component's class, one sub-folder each.
struct DiffusersFolder {
  std::string path;
  std::string class_name;               // "StableDiffusionXLPipeline"
  bool force_zeros_for_empty_prompt = true;
  // Opens and checks the folder: model_index.json readable, the pipeline class known, every component
  // the pipeline needs (tokenizers, text encoders, unet, vae, scheduler) named with a class this mmx
  // implements and its folder present (errors name the component and what was found).
  // `path` may also be a Hub id (the repo root), found in or downloaded into the Hugging Face cache
  // (`variant` picks the weights a download fetches).
  static DiffusersFolder open(const std::string& path, const std::string& variant = "");
  std::string component(const std::string& name) const;  // path of a component's folder
};

// The weights file of a component folder: `{stem}.safetensors` (or a sharded index), or with
// variant "fp16" `{stem}.fp16.safetensors`; the fp16 file is also taken when it is the only one; with no
// safetensors at all, the PyTorch pickle (`pytorch_model.bin` / `diffusion_pytorch_model.bin`, variant, shards).
// Neither: an error listing the safetensors files that are there.
std::string component_weights(const std::string& folder, const std::string& stem, const std::string& variant);

struct SDXLPromptEmbeds {
  Tensor prompt_embeds;           // [1, 77, C1 + C2]: both encoders' penultimate hidden states, concatenated
  Tensor pooled_prompt_embeds;    // [1, P]: text_encoder_2's projected pooled output
  Tensor negative_prompt_embeds, negative_pooled_prompt_embeds;
  Tensor input_ids, input_ids_2;  // [1, 77] I64
};

class SDXLTextEncoders {
 public:
  // The two tokenizers and text encoders of an SDXL pipeline folder ("" or "fp16" variant).
  static std::unique_ptr<SDXLTextEncoders> load(const std::string& pipeline_folder, const std::string& variant = "");
  virtual ~SDXLTextEncoders() = default;
  // encode_prompt with one image per prompt and classifier-free guidance: with no negative prompt and
  // force_zeros_for_empty_prompt the negative embeddings are zeros; an explicit "" is encoded.
  // Prompts over 77 tokens are cut with a warning, as diffusers does.
  virtual SDXLPromptEmbeds encode(const std::string& prompt, const std::optional<std::string>& negative_prompt) const = 0;
};

struct GenerateOptions {
  std::string prompt;
  std::optional<std::string> negative_prompt;  // none: zeros (force_zeros_for_empty_prompt), "" is encoded
  int64_t steps = 50;
  float guidance_scale = 5.0f;  // > 1: classifier-free guidance
  std::optional<int64_t> width, height;  // default: the UNet's sample_size × the VAE's scale factor
  Tensor latents;  // initial latents [1, C, h, w] (before init_noise_sigma); undefined: drawn from `seed`
  uint64_t seed = 0;  // torch.Generator().manual_seed(seed), as diffusers' generator=
  bool cuda_rng = false;  // torch.Generator("cuda").manual_seed(seed) instead (TorchCudaGenerator, in the run's dtype)
  bool keep_step_latents = false;
  // Called after each step with (step, steps, seconds the step took).
  std::function<void(int64_t, int64_t, double)> on_step;
  // Called after the stages around the loop: ("prompt", seconds) once the prompt is encoded,
  // ("decode", seconds) once the VAE has decoded the image.
  std::function<void(const char*, double)> on_stage;
};

struct GenerateResult {
  Image image;
  Tensor init_latents;  // as given (before the init_noise_sigma scaling)
  Tensor step_latents;  // [steps, 1, C, h, w] after each scheduler step (keep_step_latents)
  std::string scheduler;
};

// StableDiffusionXLPipeline.__call__ on CPU: prompt encoding, the Euler loop with guidance, VAE decode.
class SDXLPipeline {
 public:
  static std::unique_ptr<SDXLPipeline> load(const std::string& folder, const std::string& variant = "");
  virtual ~SDXLPipeline() = default;
  virtual GenerateResult generate(const GenerateOptions& options) const = 0;
  virtual int64_t default_size() const = 0;        // pixels
  virtual int64_t latent_channels() const = 0;
  virtual int64_t vae_scale_factor() const = 0;
};

// add_time_ids: original size, crop offset and target size, (height, width) each, as [1, 6] F32.
Tensor sdxl_add_time_ids(int64_t original_height, int64_t original_width, int64_t crop_top, int64_t crop_left,
                         int64_t target_height, int64_t target_width);

}  // namespace mmx
