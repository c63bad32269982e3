// The whole StableDiffusionXLPipeline call on sdxl-tiny against diffusers 0.30.3: the prompt of the lab,
// 3 steps, guidance 5.0, 64×64, from the fixture's initial latents: every step's latents and the image.
#include <cmath>
#include <map>


#include "bench/random_pipeline.hpp"
#include "mmx/error.hpp"
#include "mmx/image.hpp"
#include "mmx/safetensors.hpp"
#include "mmx/sdxl_prompt.hpp"
#include "mmx/text_to_image.hpp"
#include "test_util.hpp"

using namespace mmx;

namespace {

void expect_pixels(const Image& image, const Tensor& expected_u8, const std::string& name) {
  ASSERT_EQ(static_cast<int64_t>(image.rgb.size()), expected_u8.numel()) << name;
  int64_t worst = 0, differing = 0;
  for (int64_t i = 0; i < expected_u8.numel(); ++i) {
    const int64_t d = std::abs(int64_t(image.rgb[size_t(i)]) - expected_u8.data<int64_t>()[i]);
    worst = std::max(worst, d);
    differing += d != 0;
  }
  std::printf("  %-40s %lld of %lld pixels differ, by at most %lld\n", name.c_str(), static_cast<long long>(differing),
              static_cast<long long>(expected_u8.numel()), static_cast<long long>(worst));
  EXPECT_LE(worst, 1) << name;
}

Tensor to_u8(const Tensor& image01) {  // numpy_to_pil: round(x · 255)
  Tensor t = Tensor::empty({image01.numel()}, DType::I64);
  for (int64_t i = 0; i < image01.numel(); ++i) t.data<int64_t>()[i] = std::lround(image01.data<float>()[i] * 255.0f);
  return t;
}

}  // namespace

TEST(TextToImage, ThreeStepRunReproducesEveryStepAndTheImage) {
  const auto expected = SafetensorsFile::open(test::data("expected/sdxl-tiny.safetensors"));
  GenerateOptions o;
  o.prompt = "An astronaut riding a green horse";
  o.steps = 3;
  o.latents = expected.get("init_latents_randn");
  o.keep_step_latents = true;
  int64_t calls = 0;
  o.on_step = [&](int64_t step, int64_t steps, double) {
    ++calls;
    EXPECT_EQ(steps, 3);
    EXPECT_EQ(step, calls);
  };
  const auto pipe = SDXLPipeline::load(test::data("models/sdxl-tiny"), "", test::placement());
  EXPECT_EQ(pipe->default_size(), 64);
  const GenerateResult r = pipe->generate(o);
  EXPECT_EQ(calls, 3);
  test::expect_close("step_latents", r.step_latents, expected.get("step_latents"), 5e-5);
  expect_pixels(r.image, expected.get("image_uint8"), "image_uint8");

  o.on_step = nullptr;
  const GenerateResult r16 = SDXLPipeline::load(test::data("models/sdxl-tiny"), "fp16", test::placement())->generate(o);
  test::expect_close("fp16_weights_step_latents", r16.step_latents, expected.get("fp16_weights_step_latents"), 5e-5);
  expect_pixels(r16.image, to_u8(expected.get("fp16_weights_image")), "fp16_weights_image (rounded)");
}

TEST(TextToImage, BadSizesAndLatentsAreClearErrors) {
  const auto pipe = SDXLPipeline::load(test::data("models/sdxl-tiny"), "", test::placement());
  GenerateOptions o;
  o.prompt = "a horse";
  o.steps = 1;
  o.latents = Tensor::zeros({1, 4, 32, 32});
  o.width = 72;  // not a multiple of 8 × 2
  try {
    pipe->generate(o);
    FAIL() << "accepted width 72";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Usage);
    EXPECT_NE(std::string(e.what()).find("multiples of 16"), std::string::npos) << e.what();
  }
  o.width = 96;  // latents no longer fit
  try {
    pipe->generate(o);
    FAIL() << "accepted 32×32 latents for 96×64";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[1, 4, 32, 48]"), std::string::npos) << e.what();
  }
}

// mmx bench --write-random-sdxl: a pipeline folder from configs with random weights. Written from
// sdxl-tiny's configs, it must hold exactly the tensor names and shapes diffusers saved for sdxl-tiny
// (so the full-size folder has the Hub's layout), in F16 under the fp16 variant's names, and load and run.
TEST(TextToImage, ARandomPipelineFolderHasDiffusersLayoutAndRuns) {
  test::TempDir dir;
  const std::string out = dir.file("random");
  write_random_sdxl_pipeline(test::data("models/sdxl-tiny"), test::data("tokenizers/clip"), out, DType::F16, 7);
  for (const auto& [component, stem] : std::vector<std::pair<std::string, std::string>>{
           {"text_encoder", "model"}, {"text_encoder_2", "model"},
           {"unet", "diffusion_pytorch_model"}, {"vae", "diffusion_pytorch_model"}}) {
    const auto written = SafetensorsFile::open(out + "/" + component + "/" + stem + ".fp16.safetensors");
    const auto diffusers = SafetensorsFile::open(test::data("models/sdxl-tiny/" + component + "/" + stem + ".safetensors"));
    std::map<std::string, Shape> want, got;
    for (const auto& t : diffusers.tensors())
      if (t.name.find("position_ids") == std::string::npos) want[t.name] = t.shape;  // a buffer, not a weight
    for (const auto& t : written.tensors()) {
      got[t.name] = t.shape;
      EXPECT_EQ(t.dtype, DType::F16) << t.name;
    }
    EXPECT_EQ(got, want) << component;
  }
  GenerateOptions o;
  o.prompt = "a horse";
  o.steps = 2;
  o.seed = 3;
  const Image image = SDXLPipeline::load(out, "fp16", test::placement())->generate(o).image;
  EXPECT_EQ(image.width, 64);
  EXPECT_EQ(image.height, 64);
  EXPECT_THROW(write_random_sdxl_pipeline(test::data("models/sdxl-tiny"), test::data("tokenizers/clip"), out,
                                          DType::F16), Error);  // not over an existing folder
}

// Ten samplers by name, through the whole pipeline on sdxl-tiny against diffusers' loop
// (expected/sdxl-tiny-samplers.safetensors, tools/make_sampler_pipeline_reference.py): 4 steps, guidance 5,
// seed 7 — the stochastic samplers' step noise continues the seed's generator — every UNet call's latents.
TEST(TextToImage, EverySamplerByNameFollowsDiffusersStepForStep) {
  const auto expected = SafetensorsFile::open(test::data("expected/sdxl-tiny-samplers.safetensors"));
  const auto pipe = SDXLPipeline::load(test::data("models/sdxl-tiny"), "", test::placement());
  for (const std::string name :
       {"Euler a", "DDIM", "DPM++ 2M", "DPM++ 2M Karras", "DPM++ 2M SDE", "Heun", "UniPC", "DPM++ SDE", "LCM", "TCD"}) {
    GenerateOptions o;
    o.prompt = "An astronaut riding a green horse";
    o.steps = 4;
    o.seed = 7;
    o.guidance_scale = 5.0f;
    o.scheduler = name;
    o.keep_step_latents = true;
    const GenerateResult r = pipe->generate(o);
    // 5e-5, the SDXL bound, or twice diffusers' own float32-vs-float64 spread where that is larger: the
    // samplers that start from x₀ at t = 999 (α = 0.068, the UNet's rounding magnified 15×) — Karras 4.2e-5,
    // DPM++ SDE 4.0e-5, TCD 4.4e-5, LCM 6.2e-5 (tests/README.md).
    const std::map<std::string, double> bounds = {{"DPM++ 2M Karras", 1e-4}, {"DPM++ SDE", 1e-4}, {"TCD", 1e-4}, {"LCM", 1.3e-4}};
    const double bound = bounds.count(name) ? bounds.at(name) : 5e-5;
    test::expect_close(name + " step_latents", r.step_latents, expected.get(name + "/step_latents"), bound);
  }
}

// Image to image (StableDiffusionXLImg2ImgPipeline) against diffusers on sdxl-tiny
// (expected/sdxl-tiny-img2img.safetensors, tools/make_img2img_reference.py): coffee.png resized to 64×64 with
// Lanczos, the VAE's sample and the add_noise noise from the seed's generator, strength 0.3 of 10 steps and
// 0.75 of 4 with Euler, Euler a, DPM++ 2M and Heun — the noised start and every UNet call's latents.
TEST(TextToImage, ImageToImageFollowsDiffusersStepForStep) {
  const auto expected = SafetensorsFile::open(test::data("expected/sdxl-tiny-img2img.safetensors"));
  const auto pipe = SDXLPipeline::load(test::data("models/sdxl-tiny"), "", test::placement());
  const Image coffee = load_image(test::data("images/coffee.png"));
  struct Case {
    std::string sampler;
    int64_t steps;
    double strength;
    const char* key;
  };
  for (const Case& c : {Case{"Euler", 10, 0.3, "Euler 10 0.3"}, Case{"Euler", 4, 0.75, "Euler 4 0.75"},
                        Case{"Euler a", 4, 0.75, "Euler a 4 0.75"}, Case{"DPM++ 2M", 10, 0.3, "DPM++ 2M 10 0.3"},
                        Case{"Heun", 4, 0.75, "Heun 4 0.75"}}) {
    GenerateOptions o;
    o.prompt = "An astronaut riding a green horse";
    o.image = coffee;
    o.width = o.height = 64;
    o.strength = c.strength;
    o.steps = c.steps;
    o.seed = 3;
    o.scheduler = c.sampler;
    o.keep_step_latents = true;
    const GenerateResult r = pipe->generate(o);
    const std::string key = c.key;
    test::expect_close(key + " init_latents", r.init_latents, expected.get(key + "/init_latents"), 1e-5);
    test::expect_close(key + " step_latents", r.step_latents, expected.get(key + "/step_latents"), 5e-5);
  }
}

// Strength outside (0, 1], an image with initial latents, and a strength that leaves no step: usage errors.
TEST(TextToImage, ImageToImageRefusesWhatCannotRun) {
  const auto pipe = SDXLPipeline::load(test::data("models/sdxl-tiny"), "", test::placement());
  const auto usage_message = [&](const GenerateOptions& o) -> std::string {
    try {
      pipe->generate(o);
    } catch (const Error& e) {
      return e.kind() == ErrorKind::Usage ? e.what() : std::string("not a usage error: ") + e.what();
    }
    return "no error";
  };
  GenerateOptions o;
  o.prompt = "a cup";
  o.image = load_image(test::data("images/coffee.png"));
  o.width = o.height = 64;
  o.steps = 2;
  for (double bad : {0.0, -0.5, 1.5}) {
    o.strength = bad;
    EXPECT_NE(usage_message(o).find("strength must be in (0, 1]"), std::string::npos) << bad;
  }
  o.strength = 0.3;  // int(2 · 0.3) = 0 steps
  EXPECT_NE(usage_message(o).find("no denoising step is left"), std::string::npos);
  o.strength = 1.0;
  o.latents = Tensor::zeros({1, 4, 32, 32});
  EXPECT_NE(usage_message(o).find("an image or initial latents"), std::string::npos);
}

// The base → refiner hand-off and the refiner alone as image to image, against diffusers
// (expected/sdxl-tiny-refiner.safetensors, tools/make_refiner_reference.py; the refiner folder is
// stable-diffusion-xl-refiner-1.0's layout: text_encoder_2 only, requires_aesthetics_score, "" negatives).
TEST(TextToImage, RefinerTakesOverFromTheBaseAsDiffusersDoes) {
  const auto expected = SafetensorsFile::open(test::data("expected/sdxl-tiny-refiner.safetensors"));
  const auto base = SDXLPipeline::load(test::data("models/sdxl-tiny"), "", test::placement());
  const auto refiner = SDXLPipeline::load(test::data("models/sdxl-tiny-refiner"), "", test::placement());
  GenerateOptions o;
  o.prompt = "An astronaut riding a green horse";
  o.steps = 10;
  o.seed = 11;
  o.denoising_end = 0.8;
  const GenerateResult first = base->generate(o);
  EXPECT_TRUE(first.image.rgb.empty());
  test::expect_close("handoff base_latents", first.latents, expected.get("handoff/base_latents"), 5e-5);
  o.denoising_end.reset();
  o.denoising_start = 0.8;
  o.start_latents = first.latents;
  o.keep_step_latents = true;
  const GenerateResult second = refiner->generate(o);
  test::expect_close("handoff step_latents", second.step_latents, expected.get("handoff/step_latents"), 5e-5);
  EXPECT_EQ(second.image.width, 64);

  GenerateOptions i;
  i.prompt = o.prompt;
  i.steps = 10;
  i.seed = 11;
  i.image = load_image(test::data("images/coffee.png"));
  i.width = i.height = 64;
  i.strength = 0.3;
  i.keep_step_latents = true;
  test::expect_close("refiner img2img step_latents", refiner->generate(i).step_latents,
                     expected.get("img2img/step_latents"), 5e-5);
  // Text to image is not what a refiner does: refused with the reason.
  GenerateOptions t;
  t.prompt = "a cat";
  t.steps = 2;
  try {
    refiner->generate(t);
    ADD_FAILURE() << "a refiner generated from text";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("is a refiner"), std::string::npos) << e.what();
  }
}

// Inpainting (StableDiffusionXLInpaintPipeline) against diffusers (expected/sdxl-tiny-inpaint.safetensors,
// tools/make_inpaint_reference.py): coffee.png and a blurred tinted ellipse mask at 64×64, guidance 7.5, seed 5;
// the 4-channel base blending the noised original back (strength 0.9999 — diffusers' default, which skips the
// first step — and 1.0 from pure noise) and a 9-channel inpainting UNet (0.75; 1.0 with DPM++ 2M).
TEST(TextToImage, InpaintingFollowsDiffusersStepForStep) {
  const auto expected = SafetensorsFile::open(test::data("expected/sdxl-tiny-inpaint.safetensors"));
  const Image coffee = load_image(test::data("images/coffee.png")), mask = load_image(test::data("images/mask_ellipse.png"));
  struct Case {
    std::string folder, sampler;
    int64_t steps;
    double strength;
    std::string key;
  };
  for (const Case& c : {Case{"sdxl-tiny", "Euler", 10, 0.9999, "sdxl-tiny Euler 10 0.9999"},
                        Case{"sdxl-tiny", "Euler a", 4, 1.0, "sdxl-tiny Euler a 4 1.0"},
                        Case{"sdxl-tiny-inpaint", "Euler", 10, 0.75, "sdxl-tiny-inpaint Euler 10 0.75"},
                        Case{"sdxl-tiny-inpaint", "DPM++ 2M", 4, 1.0, "sdxl-tiny-inpaint DPM++ 2M 4 1.0"}}) {
    const auto pipe = SDXLPipeline::load(test::data("models/" + c.folder), "", test::placement());
    GenerateOptions o;
    o.prompt = "An astronaut riding a green horse";
    o.image = coffee;
    o.mask = mask;
    o.strength = c.strength;
    o.steps = c.steps;
    o.seed = 5;
    o.guidance_scale = 7.5f;
    o.scheduler = c.sampler;
    o.keep_step_latents = true;
    const GenerateResult r = pipe->generate(o);
    EXPECT_EQ(r.image.width, 64);  // the UNet's default size (the image is 600×400)
    test::expect_close(c.key + " init_latents", r.init_latents, expected.get(c.key + "/init_latents"), 1e-5);
    test::expect_close(c.key + " step_latents", r.step_latents, expected.get(c.key + "/step_latents"), 5e-5);
  }
}
