// mmx generate: Stable Diffusion XL text-to-image from a diffusers folder, as the lab's
// pipe(prompt="An astronaut riding a green horse").
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>

#include "cli/build_info.hpp"
#include "cli/commands.hpp"
#include "mmx/error.hpp"
#include "mmx/files.hpp"
#include "mmx/generation_parameters.hpp"
#include "mmx/image.hpp"
#include "mmx/lora.hpp"
#include "mmx/runtime.hpp"
#include "mmx/safetensors.hpp"
#include "mmx/scheduler.hpp"
#include "mmx/text_to_image.hpp"
#include "mmx/torch_random.hpp"

namespace mmx::cli {

const Command kGenerateCommand{
    "generate",
    "mmx generate --model MODEL --prompt P [--negative-prompt N] [--steps N] [--guidance G] [--seed S | --latents FILE]\n"
    "                    [--scheduler NAME] [--image F [--mask M] [--strength S]] [--refiner R [--denoising-end F]]\n"
    "                    [--lora FILE[:W]]... [--lora-dir DIR] [--turbo | --lcm]\n"
    "                    [--width W --height H] [--variant fp16]\n"
    "                    [--save-latents FILE] [--from-png F] [--output out.png] [--force]",
    "Generate an image with a Stable Diffusion XL pipeline folder: from text, from an image, by inpainting, with a refiner.",
    {
        {"model", "MODEL", "a diffusers pipeline folder (model_index.json, unet/, vae/, ...) or its Hub id (stabilityai/stable-diffusion-xl-base-1.0)"},
        text_option("prompt", "P", "what to draw"),
        text_option("negative-prompt", "N", "what to steer away from; none given: zero embeddings (SDXL's default), \"\" is encoded"),
        {"steps", "N", "denoising steps (default 50, diffusers' default)"},
        {"guidance", "G", "classifier-free guidance scale (default 5.0, with --mask 7.5: diffusers' defaults); 1 or less turns guidance off"},
        {"scheduler", "NAME", "the sampler, by A1111 or diffusers name (default: the folder's scheduler_config.json; see below)"},
        {"image", "FILE", "image to image (StableDiffusionXLImg2ImgPipeline): start from this picture (PNG, JPEG, WebP, ...), encoded by the VAE and noised to --strength"},
        {"mask", "FILE", "inpainting (StableDiffusionXLInpaintPipeline): repaint where this picture is white (greyscale, binarised at 0.5), keep where black; the same size as --image"},
        {"mask-blur", "R", "with --mask: blur the mask first (Pillow's GaussianBlur of radius R, as diffusers' mask_processor.blur and A1111's \"mask blur\"; default 0)"},
        {"mask-padding", "P", "with --mask: inpaint only the mask's bounding box grown by P pixels (and to the output's aspect), generated at full size and pasted back — diffusers' padding_mask_crop, A1111's \"only masked\""},
        {"strength", "S", "with --image: how much of the schedule to run, in (0, 1] (default 0.3, diffusers'; with --mask 0.9999; 1 ignores the picture's content)"},
        {"lora", "FILE[:W]", "merge a LoRA adapter (kohya/A1111 or diffusers/PEFT .safetensors, LoCon included) into the text encoders and UNet at weight W (default 1); repeat for several"},
        {"lora-dir", "DIR", "where the prompt's <lora:NAME:W> tags find NAME.safetensors (in DIR or a folder below it), as A1111 does"},
        {"turbo", "", "SDXL-Turbo's settings: trailing timestep spacing, 1 step, guidance 0 (no unconditional batch), 512×512 unless given; on by itself for a folder whose scheduler uses trailing spacing at 512²"},
        {"lcm", "", "LCM-LoRA's settings (with --lora lcm-lora-sdxl.safetensors, or an LCM-distilled UNet): the LCM scheduler, 4 steps, guidance 1"},
        {"refiner", "FOLDER", "hand the last steps to a refiner (stabilityai/stable-diffusion-xl-refiner-1.0's layout), as diffusers' base + refiner ensemble of expert denoisers"},
        {"denoising-end", "F", "with --refiner: the fraction of the schedule the base runs (default 0.8)"},
        {"aesthetic-score", "A", "a refiner's aesthetic conditioning (default 6.0; the unconditional half: --negative-aesthetic-score, default 2.5)"},
        {"negative-aesthetic-score", "A", "see --aesthetic-score"},
        {"width", "W", "image width in pixels (default: the UNet's sample_size × the VAE factor: 1024 for SDXL)"},
        {"height", "H", "image height in pixels (same default)"},
        {"variant", "fp16", "load the *.fp16.safetensors weight files (computed in float32)"},
        {"seed", "S", "the initial noise of generator=torch.Generator().manual_seed(S), value for value (default: a random seed, printed)"},
        {"rng", "cpu|cuda", "cpu (default): torch.Generator().manual_seed(S); cuda: torch.Generator(\"cuda\").manual_seed(S), drawn on the GPU in --dtype as diffusers does (needs --device cuda)"},
        {"latents", "FILE", "initial latents instead: a .safetensors file with key 'latents' [1, 4, H/8, W/8] (diffusers' latents=), or a --save-latents file (its init_latents)"},
        {"save-latents", "FILE", "also write init_latents and step_latents (every step, stacked) to a .safetensors file"},
        {"output", "FILE", "the PNG to write (default out.png); an existing file is kept unless --force"},
        {"preview-every", "N", "every N denoising steps, decode the latents so far into a preview PNG (--preview, default OUTPUT with .preview.png), replaced atomically: watch it in an image viewer"},
        {"preview", "FILE", "where --preview-every writes (default: the output's name with .preview.png)"},
        {"force", "", "overwrite an existing output file"},
        {"from-png", "FILE", "rerun a generated PNG: its parameters (A1111's text: prompt, negative prompt, steps, sampler, CFG scale, seed, size, model) are the defaults, the options given here override them"},
    },
    R"(The pipeline: both CLIP text encoders (penultimate hidden states concatenated, the second's projected
pooled output), the folder's scheduler (or --scheduler's), the UNet over a batch of
[unconditional, conditional] with guidance, the VAE decoder, (x / 2 + 0.5).clamp(0, 1) rounded to 8 bits.
The PNG carries the prompt, negative prompt, steps, guidance, scheduler, model and mmx version as text.

--scheduler takes the folder's scheduler_config.json as diffusers' OtherScheduler.from_config(config)
does: its fields are kept, read by the chosen class, with the settings the A1111 name implies. Each
runs diffusers 0.30.3's arithmetic (tests/README.md: bit for bit per step; UniPC of order 3 within
2 rounding units), and the ancestral and SDE samplers draw their noise from the --seed generator:
  A1111 name            diffusers class                 UNet calls per step
  Euler                 EulerDiscreteScheduler          1 (SDXL's default)
  Euler a               EulerAncestralDiscreteScheduler 1
  DDIM                  DDIMScheduler (eta 0)           1
  DPM++ 2M              DPMSolverMultistepScheduler     1
  DPM++ 2M Karras         + use_karras_sigmas           1
  DPM++ 2M SDE            + algorithm_type sde-dpmsolver++  1
  DPM++ 2M SDE Karras     + both                        1
  DPM++ SDE             DPMSolverSinglestepScheduler    1
  DPM++ SDE Karras        + use_karras_sigmas           1
  Heun                  HeunDiscreteScheduler           2 (2·steps − 1 in all)
  LMS                   LMSDiscreteScheduler            1
  LMS Karras              + use_karras_sigmas           1
  UniPC                 UniPCMultistepScheduler         1
  LCM                   LCMScheduler                    1 (LCM-distilled models and LCM-LoRA)
  TCD                   TCDScheduler (eta 0)            1
DPM2 and DPM2 a (KDPM2*) are named and refused: not implemented yet.

--image runs image to image as diffusers' StableDiffusionXLImg2ImgPipeline: the picture resized to
--width × --height with Pillow's Lanczos (or cut to a multiple of 8), encoded by the VAE (a sample of
its latent distribution, from the --seed generator), noised to the first of the last strength · steps
timesteps, and denoised from there: --steps 30 --strength 0.3 runs 9 steps.

--mask inpaints as StableDiffusionXLInpaintPipeline: an inpainting UNet (9 input channels) takes the
mask and the masked image's latents; a plain base blends the noised original back outside the mask
after every step. The size defaults to the model's (1024² for SDXL), as diffusers' pipeline does.

--refiner runs the base to --denoising-end (0.8: its first 80 % of the noise levels) and hands its
latents to the refiner, which runs the rest with its aesthetic-score conditioning and decodes; a
refiner folder alone works as --model with --image.

The PNG carries its parameters as AUTOMATIC1111 writes them (a "parameters" text chunk: prompt,
"Negative prompt:", then "Steps: 30, Sampler: Euler a, CFG scale: 5, Seed: 7, Size: 1024x1024,
Model: ..."), which A1111, ComfyUI and image viewers read, and which --from-png reads back.

--lora merges adapters into the weights once, at load: W + weight · (alpha / rank) · up · down for every
module the file names (f16 weights merged in f32 and rounded once), so each step runs at the base
model's speed. Both published formats are read: kohya/A1111 (lora_unet_*, lora_te1_*, lora_te2_*, in
diffusers' or SGM's input_blocks/middle_block/output_blocks names) and diffusers/PEFT (unet.*.lora_A /
lora_B, text_encoder.*, text_encoder_2.*). A key that matches no module is an error listing it; DoRA,
LoHa, LoKr are refused by name. `<lora:NAME:W>` in the prompt (with --lora-dir) does the same and is
taken out of the text the encoders read, as A1111 does.

Few-step generation: SDXL-Turbo (--turbo: 1–4 steps, guidance 0) and LCM-LoRA (--lcm with the
adapter: 4–8 steps, guidance 1–2). At guidance 1 or less the UNet runs once per step, not twice.

The noise of --seed S is torch's own (its Mersenne Twister and normal sampler reproduced bit for bit),
so --seed 0 starts from exactly the latents diffusers draws with torch.Generator().manual_seed(0).

examples (the tiny test pipeline):
  mmx generate --model tests/data/models/sdxl-tiny --prompt "An astronaut riding a green horse" --steps 3 \
               --seed 0 --output astronaut.png
  mmx generate --model tests/data/models/sdxl-tiny --prompt "a castle" --steps 2 --seed 1 \
               --lora tests/data/lora/sdxl-tiny-kohya-sgm.safetensors:0.7 --output castle.png
  mmx generate --model tests/data/models/sdxl-tiny --prompt "a fox in the snow" --turbo --width 64 --height 64 \
               --seed 3 --output fox.png
(with the real model: --model stabilityai/sdxl-turbo --variant fp16 --turbo, 512² in one step)
)",
};

namespace {

void progress(int64_t step, int64_t steps, double seconds, double* total) {
  *total += seconds;
  if (log_level() < LogLevel::Warn) return;
  const double per_step = *total / static_cast<double>(step), eta = per_step * static_cast<double>(steps - step);
  const bool tty = ::isatty(STDERR_FILENO);
  std::fprintf(stderr, "%sstep %lld/%lld  %.2f s/step  ETA %.0f s%s", tty ? "\r" : "", static_cast<long long>(step),
               static_cast<long long>(steps), per_step, eta, tty && step < steps ? "" : "\n");
  std::fflush(stderr);
}

std::string number_text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

// --from-png: the file's A1111 parameters as the defaults of the options not given.
Args with_png_parameters(Args args) {
  const auto file = args.get("from-png");
  if (!file) return args;
  const auto chunks = read_png_text(read_file(*file), *file);
  const auto chunk = [&](const std::string& key) -> std::optional<std::string> {
    for (const auto& [k, v] : chunks)
      if (k == key) return v;
    return std::nullopt;
  };
  const auto text = chunk("parameters");
  if (!text) usage_error(*file, ": no \"parameters\" text chunk (the generation parameters A1111 and mmx write)");
  const GenerationParameters p = GenerationParameters::parse(*text, *file);
  auto fill = [&](const std::string& option, const std::optional<std::string>& value) {
    if (value && !args.has(option)) args.values_[option] = {*value};
  };
  fill("prompt", p.prompt);
  // mmx's own chunk tells an explicit empty negative prompt from none (zero embeddings), which A1111's
  // text cannot.
  if (!args.has("negative-prompt")) {
    if (p.negative_prompt) fill("negative-prompt", p.negative_prompt);
    else if (chunk("negative_prompt") == std::string()) fill("negative-prompt", std::string());
  }
  fill("steps", p.get("Steps"));
  fill("scheduler", p.get("Sampler"));
  fill("guidance", p.get("CFG scale"));
  if (!args.has("latents")) fill("seed", p.get("Seed"));
  if (const auto size = p.get("Size")) {
    const size_t x = size->find('x');
    if (x == std::string::npos) usage_error(*file, ": Size '", *size, "' is not WIDTHxHEIGHT");
    fill("width", size->substr(0, x));
    fill("height", size->substr(x + 1));
  }
  fill("model", p.get("Model"));
  if (args.has("image")) {
    fill("strength", p.get("Denoising strength"));
    fill("mask", p.get("Mask"));
    fill("mask-blur", p.get("Mask blur"));
    if (p.get("Inpaint area") == std::string("Only masked")) fill("mask-padding", p.get("Masked area padding"));
  }
  fill("refiner", p.get("Refiner"));
  if (const auto loras = p.get("LoRA"); loras && !args.has("lora"))  // "file:w; file:w"
    for (size_t at = 0; at <= loras->size();) {
      const size_t end = std::min(loras->find("; ", at), loras->size());
      args.values_["lora"].push_back(loras->substr(at, end - at));
      at = end + 2;
    }
  fill("lora-dir", p.get("LoRA dir"));
  if (p.get("Schedule type") == std::string("trailing") && !args.has("turbo")) args.values_["turbo"] = {""};
  if (p.get("Refiner")) fill("denoising-end", p.get("Refiner switch at"));
  return args;
}

}  // namespace

int run_generate(const Args& given) {
  const Args args = with_png_parameters(given);
  const auto model = args.get("model");
  if (!model) usage_error("--model MODEL is required (a diffusers StableDiffusionXLPipeline folder)");
  const auto prompt = args.get("prompt");
  if (!prompt) usage_error("--prompt is required");
  const auto latents_file = args.get("latents");
  if (latents_file && args.has("seed")) usage_error("give --seed or --latents, not both");
  const Placement placement = placement_of(args);
  const std::string rng = args.get("rng").value_or("cpu");
  if (rng != "cpu" && rng != "cuda") usage_error("--rng must be cpu or cuda, got '", rng, "'");
  if (rng == "cuda" && placement.device.is_cpu()) usage_error("--rng cuda draws the noise on the GPU: add --device cuda");
  if (rng == "cuda" && latents_file) usage_error("--rng chooses how the seed's noise is drawn; --latents gives it");
  const std::string output = args.get("output").value_or("out.png");
  if (extension_of(output) != ".png") usage_error("--output '", output, "': the image is written as .png");
  check_output_path(output);
  if (file_exists(output) && !args.has("force")) usage_error("'", output, "' exists; give --force to overwrite it");
  const auto save_latents = args.get("save-latents");
  if (save_latents) {
    if (extension_of(*save_latents) != ".safetensors") usage_error("--save-latents '", *save_latents, "': use .safetensors");
    check_output_path(*save_latents);
  }

  GenerateOptions o;
  const std::string lora_dir = args.get("lora-dir").value_or("");
  const PromptLoras tagged = extract_prompt_loras(*prompt, lora_dir);
  o.prompt = tagged.prompt;
  for (const std::string& spec : args.all("lora")) o.loras.push_back(parse_lora_option(spec));
  o.loras.insert(o.loras.end(), tagged.loras.begin(), tagged.loras.end());
  if (args.has("negative-prompt")) o.negative_prompt = args.all("negative-prompt").back();
  if (args.has("turbo") && args.has("lcm")) usage_error("--turbo and --lcm are two different few-step models; give one");
  const bool turbo = args.has("turbo") || (!args.has("lcm") && SDXLPipeline::is_turbo(*model, args.get("variant").value_or("")));
  if (turbo && !args.has("turbo") && chatty())
    std::fprintf(stderr, "an SDXL-Turbo folder (trailing timestep spacing at 512²): 1 step and guidance 0 unless given\n");
  if (turbo) {
    o.scheduler_settings = R"({"timestep_spacing": "trailing"})";
    if (!args.has("image")) {  // Turbo is trained at 512²
      if (!args.has("width")) o.width = 512;
      if (!args.has("height")) o.height = 512;
    }
  }
  // diffusers' defaults: 50 steps, guidance 5.0 (text and image to image), 7.5 for inpainting; SDXL-Turbo's
  // model card: 1 step, guidance 0; LCM-LoRA's: 4 steps, guidance 1.
  o.steps = args.get_int("steps", 1).value_or(turbo ? 1 : args.has("lcm") ? 4 : 50);
  o.guidance_scale = static_cast<float>(
      args.get_double("guidance", 0).value_or(turbo ? 0.0 : args.has("lcm") ? 1.0 : args.has("mask") ? 7.5 : 5.0));
  o.scheduler = args.get("scheduler").value_or(args.has("lcm") ? "LCM" : "");
  if (o.guidance_scale > 100) usage_error("--guidance ", o.guidance_scale, ": a guidance scale is 0 to 100 (SDXL works at 5 to 9)");
  if (const auto image = args.get("image")) {
    o.image = load_image(*image);
    if (const auto mask = args.get("mask")) {
      o.mask = load_image(*mask);
      if (o.mask->width != o.image->width || o.mask->height != o.image->height)
        usage_error("--mask '", *mask, "' is ", o.mask->width, "×", o.mask->height, " but --image is ", o.image->width, "×",
                    o.image->height, ": a mask covers its image pixel for pixel");
    }
    if (args.has("mask-blur") && !o.mask) usage_error("--mask-blur softens a --mask; give --mask FILE");
    o.mask_blur = static_cast<float>(args.get_double("mask-blur", 0).value_or(0));
    if (args.has("mask-padding") && !o.mask) usage_error("--mask-padding crops around a --mask; give --mask FILE");
    if (args.has("mask-padding")) o.mask_padding = args.get_int("mask-padding", 0);
    // diffusers' defaults: 0.3 for image to image, 0.9999 for inpainting (which skips the first step).
    o.strength = args.get_double("strength", 0).value_or(o.mask ? 0.9999 : 0.3);
  } else if (args.has("strength") || args.has("mask")) {
    usage_error(args.has("mask") ? "--mask marks what to repaint in an --image" : "--strength is the part of the schedule run from an --image",
                "; give --image FILE");
  }
  if (args.has("width")) o.width = args.get_int("width", 1);
  if (args.has("height")) o.height = args.get_int("height", 1);
  const std::string variant = args.get("variant").value_or("");
  if (latents_file) {
    const auto file = SafetensorsFile::open(*latents_file);
    const char* key = file.find("latents") ? "latents" : file.find("init_latents") ? "init_latents" : nullptr;
    if (!key) fail(*latents_file, ": no tensor 'latents' (or 'init_latents', as --save-latents writes it)");
    o.latents = file.get(key).to(DType::F32).clone();
  } else {
    o.seed = args.has("seed") ? static_cast<uint64_t>(*args.get_int("seed", 0)) : std::random_device{}();
    o.device_rng = rng == "cuda";
    if (!args.has("seed") && log_level() >= LogLevel::Warn) std::fprintf(stderr, "seed %llu\n", static_cast<unsigned long long>(o.seed));
  }
  o.keep_step_latents = save_latents.has_value();
  std::string preview_path;
  if (args.has("preview") && !args.has("preview-every")) usage_error("--preview names the file --preview-every N writes; give --preview-every");
  if (args.has("preview-every")) {
    o.preview_every = *args.get_int("preview-every", 1);
    preview_path = args.get("preview").value_or(output.substr(0, output.size() - 4) + ".preview.png");
    if (extension_of(preview_path) != ".png") usage_error("--preview '", preview_path, "': previews are written as .png");
    check_output_path(preview_path);
    o.on_preview = [preview_path](int64_t done, const Image& image) {
      write_file_atomically(preview_path, encode_png(image, {{"preview", "after " + std::to_string(done) + " UNet steps"}}));
    };
  }
  double total = 0, prompt_s = 0, decode_s = 0, load_adapters_s = 0;
  int64_t calls = 0;  // UNet calls run: fewer than --steps from an image, more for Heun
  o.on_step = [&](int64_t step, int64_t steps, double seconds) {
    ++calls;
    progress(step, steps, seconds, &total);
  };
  o.on_stage = [&](const char* stage, double seconds) {
    const std::string name = stage;
    (name == "prompt" ? prompt_s : name == "decode" ? decode_s : load_adapters_s) = seconds;
    if (log_level() >= LogLevel::Warn)
      std::fprintf(stderr, "%s in %.2f s\n", name == "prompt" ? "encoded the prompt" : name == "decode" ? "decoded the image"
                                                                                      : "merged the LoRA adapters", seconds);
  };

  // The ensemble of expert denoisers: the base stops at --denoising-end, the refiner runs the rest from its
  // latents, with the same generator.
  const auto refiner = args.get("refiner");
  if (!refiner && args.has("denoising-end")) usage_error("--denoising-end hands the last steps to a --refiner; give --refiner FOLDER");
  GenerateOptions second = o;
  if (refiner) {
    if (o.image) usage_error("--refiner continues a text-to-image base; for image to image give the refiner as --model");
    if (o.device_rng) usage_error("--rng cuda with --refiner is not supported yet; use the CPU generator");
    o.denoising_end = args.get_double("denoising-end", 0).value_or(0.8);
    auto generator = std::make_shared<TorchGenerator>(o.seed);
    if (!latents_file) o.generator = [generator](const Shape& shape) { return generator->randn(shape); };
    second = o;
    second.denoising_start = o.denoising_end;
    second.denoising_end.reset();
    second.latents = Tensor();
    second.keep_step_latents = false;
    second.aesthetic_score = args.get_double("aesthetic-score", 0).value_or(6.0);
    second.negative_aesthetic_score = args.get_double("negative-aesthetic-score", 0).value_or(2.5);
    second.loras.clear();  // adapters are made for the base's UNet and encoders
    second.scheduler_settings.clear();
  }
  SDXLPipeline::check(*model, o, variant);  // sizes, steps, latents: refused before gigabytes of weights are read
  if (refiner) SDXLPipeline::check(*refiner, second, variant);
  const auto load_start = std::chrono::steady_clock::now();
  const auto pipe = SDXLPipeline::load(*model, variant, placement);
  double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - load_start).count();
  if (log_level() >= LogLevel::Warn) std::fprintf(stderr, "loaded the pipeline in %.2f s\n", load_s);
  GenerateResult r = pipe->generate(o);
  if (refiner) {
    const auto refiner_start = std::chrono::steady_clock::now();
    const auto refine = SDXLPipeline::load(*refiner, variant, placement);
    load_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - refiner_start).count();
    if (log_level() >= LogLevel::Warn)
      std::fprintf(stderr, "loaded the refiner; it runs the steps after %g of the schedule\n", *o.denoising_end);
    second.start_latents = r.latents;
    const Tensor base_steps = r.step_latents, init = r.init_latents;
    r = refine->generate(second);
    r.init_latents = init;
    r.step_latents = base_steps;  // --save-latents: the base's steps
  }
  std::vector<std::pair<std::string, std::string>> text = {
      {"prompt", *prompt},
      {"negative_prompt", o.negative_prompt ? *o.negative_prompt : "(none: zero embeddings)"},
      {latents_file ? "latents" : "seed", latents_file ? *latents_file : std::to_string(o.seed)},
      {"steps", std::to_string(o.steps)},
      {"guidance_scale", number_text(o.guidance_scale)},
      {"scheduler", r.scheduler},
      {"model", *model + (variant.empty() ? "" : " (" + variant + ")")},
      {"software", std::string("mmx ") + kVersion},
  };
  // The prompt with its <lora:…> tags, as A1111 keeps them.
  GenerationParameters parameters = GenerationParameters::basic(
      *prompt, o.negative_prompt, o.steps, Scheduler::display_name(o.scheduler, r.scheduler), o.guidance_scale,
      latents_file ? std::nullopt : std::optional<uint64_t>(o.seed), r.image.width, r.image.height, *model);
  if (refiner) {
    parameters.fields.emplace_back("Refiner", *refiner);
    parameters.fields.emplace_back("Refiner switch at", number_text(*o.denoising_end));
  }
  if (o.image) parameters.fields.emplace_back("Denoising strength", number_text(o.strength));
  if (o.mask) parameters.fields.emplace_back("Mask", *args.get("mask"));
  if (o.mask && o.mask_blur > 0) parameters.fields.emplace_back("Mask blur", number_text(o.mask_blur));
  if (o.mask_padding) {
    parameters.fields.emplace_back("Inpaint area", "Only masked");
    parameters.fields.emplace_back("Masked area padding", std::to_string(*o.mask_padding));
  }
  if (!variant.empty()) parameters.fields.emplace_back("Variant", variant);
  if (!args.all("lora").empty()) {
    std::string list;
    for (const std::string& spec : args.all("lora")) list += (list.empty() ? "" : "; ") + spec;
    parameters.fields.emplace_back("LoRA", list);
  }
  if (!lora_dir.empty()) parameters.fields.emplace_back("LoRA dir", lora_dir);
  if (turbo) parameters.fields.emplace_back("Schedule type", "trailing");
  parameters.fields.emplace_back("Version", std::string("mmx ") + kVersion);
  text.emplace_back("parameters", parameters.to_text());
  StagedOutputs outputs;  // the image and the latents: both, or neither
  if (save_latents)
    write_safetensors(outputs.temporary_for(*save_latents), {{"init_latents", r.init_latents}, {"step_latents", r.step_latents}});
  write_file_atomically(outputs.temporary_for(output), encode_png(r.image, text));
  outputs.commit();
  if (chatty()) std::fprintf(stderr,
               "wrote %s (%lld×%lld): load %.2f s, prompt %.2f s, %lld UNet steps at %.2f s/step, decode %.2f s; "
               "peak RSS %.0f MiB%s\n",
               output.c_str(), static_cast<long long>(r.image.width), static_cast<long long>(r.image.height), load_s + load_adapters_s,
               prompt_s, static_cast<long long>(calls), total / static_cast<double>(std::max<int64_t>(calls, 1)), decode_s, peak_rss_mb(),
               !placement.device.is_cpu()
                   ? str(", peak device memory ", static_cast<long long>(peak_memory_mb(placement.device)), " MiB on ",
                         device_description(placement.device)).c_str()
                   : "");
  return 0;
}

}  // namespace mmx::cli
