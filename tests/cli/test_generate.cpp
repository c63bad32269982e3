// mmx generate end to end on sdxl-tiny: the PNG equals diffusers' image (±1 per channel), the saved
// latents equal every step of diffusers' run, the PNG carries its parameters, bad input is refused.
#include <filesystem>
#include <limits>

#include "cli/run_mmx.hpp"
#include "mmx/error.hpp"
#include "mmx/files.hpp"
#include "mmx/generation_parameters.hpp"
#include "mmx/image.hpp"
#include "mmx/pil_resize.hpp"
#include "test_util.hpp"

using namespace mmx;
using test::Result;
using test::run;

namespace {
std::vector<std::string> generate_args(const std::string& output, const std::vector<std::string>& extra = {}) {
  std::vector<std::string> a = {"generate", "--model", test::data("models/sdxl-tiny"), "--prompt",
                                "An astronaut riding a green horse", "--steps", "3", "--latents",
                                test::data("models/sdxl-tiny-latents.safetensors"), "--output", output};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}
}  // namespace

TEST(CliGenerate, TheImageAndEveryStepAreDiffusers) {
  test::TempDir dir;
  const Result r = run(generate_args(dir.file("a.png"), {"--save-latents", dir.file("l.safetensors")}));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("step 3/3"), std::string::npos) << r.err;
  const Image got = load_image(dir.file("a.png")), want = load_image(test::data("expected/sdxl-tiny_image.png"));
  ASSERT_EQ(got.rgb.size(), want.rgb.size());
  int worst = 0;
  for (size_t i = 0; i < got.rgb.size(); ++i) worst = std::max(worst, std::abs(int(got.rgb[i]) - int(want.rgb[i])));
  std::printf("  mmx generate vs diffusers' PNG: max |d| = %d/255\n", worst);
  EXPECT_LE(worst, 1);
  const auto saved = SafetensorsFile::open(dir.file("l.safetensors"));
  const auto expected = SafetensorsFile::open(test::data("expected/sdxl-tiny.safetensors"));
  test::expect_close("saved init_latents", saved.get("init_latents"), expected.get("init_latents_randn"), 0);
  test::expect_close("saved step_latents", saved.get("step_latents"), expected.get("step_latents"), 5e-5);
  const std::string png = read_file(dir.file("a.png"));
  for (const char* text : {"An astronaut riding a green horse", "EulerDiscreteScheduler", "mmx 0.1.0", "guidance_scale"})
    EXPECT_NE(png.find(text), std::string::npos) << text;
}

TEST(CliGenerate, SeedZeroIsDiffusersGeneratorSeedZero) {
  // --seed 0 draws torch.randn with manual_seed(0): the fixture's initial latents, so the same image.
  test::TempDir dir;
  const Result r = run({"generate", "--model", test::data("models/sdxl-tiny"), "--prompt",
                        "An astronaut riding a green horse", "--steps", "3", "--seed", "0", "--output", dir.file("s.png"),
                        "--save-latents", dir.file("s.safetensors")});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto expected = SafetensorsFile::open(test::data("expected/sdxl-tiny.safetensors"));
  test::expect_close("--seed 0 init_latents", SafetensorsFile::open(dir.file("s.safetensors")).get("init_latents"),
                     expected.get("init_latents_randn"), 0);
  const Image got = load_image(dir.file("s.png")), want = load_image(test::data("expected/sdxl-tiny_image.png"));
  int worst = 0;
  for (size_t i = 0; i < got.rgb.size(); ++i) worst = std::max(worst, std::abs(int(got.rgb[i]) - int(want.rgb[i])));
  EXPECT_LE(worst, 1);
  EXPECT_NE(read_file(dir.file("s.png")).find("seed"), std::string::npos);
}

TEST(CliGenerate, BadInputIsRefusedAndNothingIsOverwritten) {
  test::TempDir dir;
  const std::string out = dir.file("a.png");
  write_file_atomically(out, "keep me");
  Result r = run(generate_args(out));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("give --force"), std::string::npos) << r.err;
  EXPECT_EQ(read_file(out), "keep me");
  const std::string fresh = dir.file("b.png");
  r = run(generate_args(fresh, {"--seed", "0"}));  // with --latents too
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("give --seed or --latents, not both"), std::string::npos) << r.err;
  r = run(generate_args(fresh, {"--width", "72"}));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("multiples of 16"), std::string::npos) << r.err;
  r = run(generate_args(fresh, {"--guidance", "lots"}));
  EXPECT_EQ(r.code, 2);
  r = run({"generate", "--model", test::data("models/bert-tiny"), "--prompt", "x", "--latents",
           test::data("models/sdxl-tiny-latents.safetensors"), "--output", fresh});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("no model_index.json"), std::string::npos) << r.err;
  r = run({"generate", "--model", test::data("models/sdxl-tiny"), "--prompt", "x", "--latents",
           test::data("expected/sdxl-tiny.safetensors"), "--output", fresh});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("no tensor 'latents'"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(fresh));
}

// diffusers cuts a prompt at CLIP's 77 tokens and says so; so does mmx, and still writes the image.
TEST(CliGenerate, APromptOverSeventySevenTokensIsCutWithAWarning) {
  test::TempDir dir;
  std::string prompt;
  for (int i = 0; i < 40; ++i) prompt += "green horse ";
  const Result r = run({"generate", "--model", test::data("models/sdxl-tiny"), "--prompt", prompt, "--steps", "1",
                        "--latents", test::data("models/sdxl-tiny-latents.safetensors"), "--output", dir.file("a.png")});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("the prompt is 82 tokens; CLIP reads 77, so the rest was cut"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("encoded the prompt in"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("peak RSS"), std::string::npos) << r.err;
  EXPECT_TRUE(std::filesystem::exists(dir.file("a.png")));
}

// NaN latents (as an fp16 overflow would give) decode to NaN: an error, never a black PNG.
TEST(CliGenerate, NaNInTheDecodedImageIsAnErrorAndNoFile) {
  // A VAE whose decoder holds a NaN (the latents themselves are refused before any work when not finite).
  test::TempDir dir;
  const std::string model = dir.file("sdxl");
  std::filesystem::copy(test::data("models/sdxl-tiny"), model, std::filesystem::copy_options::recursive);
  const std::string vae = model + "/vae/diffusion_pytorch_model.safetensors";
  {
    const SafetensorsFile file = SafetensorsFile::open(vae);
    std::vector<std::pair<std::string, Tensor>> tensors;
    for (const auto& info : file.tensors()) {
      Tensor t = file.get(info.name).clone();
      if (info.name == "decoder.conv_out.bias") t.data<float>()[1] = std::numeric_limits<float>::quiet_NaN();
      tensors.emplace_back(info.name, t);
    }
    write_safetensors(dir.file("vae.safetensors"), tensors);
  }
  std::filesystem::rename(dir.file("vae.safetensors"), vae);
  const Result r = run({"generate", "--model", model, "--prompt", "a horse", "--steps", "1", "--latents",
                        test::data("models/sdxl-tiny-latents.safetensors"), "--output", dir.file("a.png")});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("the VAE decoded non-finite values"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir.file("a.png")));
}

// Everything the configs can say is checked before a weight is read: a size that is not a multiple of
// 64, or too large to mean anything, is refused without loading the pipeline (the logs say so).
TEST(CliGenerate, SizesAndStepsAreRefusedBeforeLoading) {
  test::TempDir dir;
  for (const std::vector<std::string>& bad : {std::vector<std::string>{"--width", "100", "--height", "64"},
                                              {"--width", "100000", "--height", "64"},
                                              {"--width", "8192", "--height", "8192"},
                                              {"--steps", "5000"}}) {
    std::vector<std::string> args = {"generate", "--model", test::data("models/sdxl-tiny"), "--prompt", "x",
                                     "--seed", "0", "--output", dir.file("x.png"), "--verbose"};
    args.insert(args.end(), bad.begin(), bad.end());
    const Result r = run(args);
    EXPECT_EQ(r.code, 2) << bad[0] << " " << bad[1] << "\n" << r.err;
    EXPECT_EQ(r.err.find("loaded the pipeline"), std::string::npos) << r.err;
    EXPECT_FALSE(std::filesystem::exists(dir.file("x.png")));
  }
}

// What --save-latents writes, --latents takes back: the same image again.
TEST(CliGenerate, SavedLatentsReproduceTheImage) {
  test::TempDir dir;
  Result r = run({"generate", "--model", test::data("models/sdxl-tiny"), "--prompt", "a horse", "--steps", "2",
                  "--seed", "5", "--output", dir.file("a.png"), "--save-latents", dir.file("l.safetensors")});
  ASSERT_EQ(r.code, 0) << r.err;
  r = run({"generate", "--model", test::data("models/sdxl-tiny"), "--prompt", "a horse", "--steps", "2", "--latents",
           dir.file("l.safetensors"), "--output", dir.file("b.png")});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(load_image(dir.file("a.png")).rgb, load_image(dir.file("b.png")).rgb);
}

// --scheduler reads the folder's scheduler_config.json as another class (diffusers' from_config): DDIM by
// name gives the image of a folder whose config names DDIMScheduler; Euler by name is the folder's own.
// Names mmx does not run are refused before loading, listing those it runs; no PNG is written.
TEST(CliGenerate, SchedulerByNameIsTheFoldersConfigReadAsThatClass) {
  test::TempDir dir;
  const std::string ddim = dir.file("sdxl-ddim");
  std::filesystem::copy(test::data("models/sdxl-tiny"), ddim, std::filesystem::copy_options::recursive);
  for (const char* file : {"/scheduler/scheduler_config.json", "/model_index.json"}) {
    std::string text = read_file(ddim + file);
    text.replace(text.find("EulerDiscreteScheduler"), 22, "DDIMScheduler");
    std::filesystem::remove(ddim + file);  // a copy of a link would write through it
    write_file_atomically(ddim + file, text);
  }
  auto gen = [&](const std::string& model, const std::vector<std::string>& extra, const std::string& out) {
    std::vector<std::string> args = {"generate", "--model", model, "--prompt", "a cat", "--steps", "3", "--seed", "0",
                                     "--output", dir.file(out)};
    args.insert(args.end(), extra.begin(), extra.end());
    return run(args);
  };
  ASSERT_EQ(gen(test::data("models/sdxl-tiny"), {"--scheduler", "DDIM"}, "by_name.png").code, 0);
  ASSERT_EQ(gen(ddim, {}, "by_folder.png").code, 0);
  ASSERT_EQ(gen(test::data("models/sdxl-tiny"), {"--scheduler", "EulerDiscreteScheduler"}, "euler.png").code, 0);
  ASSERT_EQ(gen(test::data("models/sdxl-tiny"), {}, "own.png").code, 0);
  EXPECT_EQ(load_image(dir.file("by_name.png")).rgb, load_image(dir.file("by_folder.png")).rgb);
  EXPECT_EQ(load_image(dir.file("euler.png")).rgb, load_image(dir.file("own.png")).rgb);
  EXPECT_NE(load_image(dir.file("by_name.png")).rgb, load_image(dir.file("own.png")).rgb);
  // A stochastic sampler draws its step noise from the seed's generator: the same seed, the same image.
  ASSERT_EQ(gen(test::data("models/sdxl-tiny"), {"--scheduler", "Euler a"}, "ancestral.png").code, 0);
  ASSERT_EQ(gen(test::data("models/sdxl-tiny"), {"--scheduler", "EulerAncestralDiscreteScheduler"}, "ancestral2.png").code, 0);
  EXPECT_EQ(load_image(dir.file("ancestral.png")).rgb, load_image(dir.file("ancestral2.png")).rgb);
  EXPECT_NE(load_image(dir.file("ancestral.png")).rgb, load_image(dir.file("own.png")).rgb);
  int other = 0;
  for (const std::string name : {"DPM++ 2M Karras", "DPM++ 2M SDE", "Heun", "UniPC", "LCM", "TCD", "DPM++ SDE", "LMS Karras"})
    EXPECT_EQ(gen(test::data("models/sdxl-tiny"), {"--scheduler", name}, "other" + std::to_string(++other) + ".png").code, 0)
        << name;
  for (const std::string name : {"DPM2", "Foo"}) {
    const Result r = gen(test::data("models/sdxl-tiny"), {"--scheduler", name}, "refused.png");
    EXPECT_EQ(r.code, 2) << name;
    EXPECT_NE(r.err.find("\"DDIM\" (DDIMScheduler)"), std::string::npos) << r.err;
    EXPECT_FALSE(std::filesystem::exists(dir.file("refused.png")));
  }
}

// The PNG's parameters in A1111's text; --from-png reruns the image bit for bit and options override it.
TEST(CliGenerate, ParametersAreA1111sTextAndFromPngRerunsThem) {
  test::TempDir dir;
  const std::vector<std::string> base = {"generate", "--model", test::data("models/sdxl-tiny"), "--prompt",
                                         "a cat, sitting: on a mat\nsecond line", "--negative-prompt", "blurry",
                                         "--steps", "3", "--seed", "5", "--scheduler", "Euler a", "--output"};
  auto args = base;
  args.push_back(dir.file("first.png"));
  ASSERT_EQ(run(args).code, 0);
  const auto chunks = read_png_text(read_file(dir.file("first.png")), "first.png");
  std::string parameters;
  for (const auto& [k, v] : chunks)
    if (k == "parameters") parameters = v;
  const std::string expected = "a cat, sitting: on a mat\nsecond line\nNegative prompt: blurry\n"
                               "Steps: 3, Sampler: Euler a, CFG scale: 5, Seed: 5, Size: 64x64, Model: " +
                               test::data("models/sdxl-tiny") + ", Version: mmx ";
  EXPECT_EQ(parameters.substr(0, expected.size()), expected);
  EXPECT_GT(parameters.size(), expected.size());  // the version
  ASSERT_EQ(run({"generate", "--from-png", dir.file("first.png"), "--output", dir.file("again.png")}).code, 0);
  EXPECT_EQ(read_file(dir.file("first.png")), read_file(dir.file("again.png")));
  ASSERT_EQ(run({"generate", "--from-png", dir.file("first.png"), "--seed", "6", "--output", dir.file("seed6.png")}).code, 0);
  EXPECT_NE(load_image(dir.file("first.png")).rgb, load_image(dir.file("seed6.png")).rgb);
  // A PNG without parameters, and a file that is no PNG: refused by name, nothing written.
  write_file_atomically(dir.file("plain.png"), encode_png(load_image(dir.file("first.png"))));
  Result r = run({"generate", "--from-png", dir.file("plain.png"), "--output", dir.file("none.png")});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("no \"parameters\" text chunk"), std::string::npos) << r.err;
  write_file_atomically(dir.file("text.png"), "hello");
  r = run({"generate", "--from-png", dir.file("text.png"), "--output", dir.file("none.png")});
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("not a PNG file"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir.file("none.png")));
}

// Text as A1111 writes it (its create_infotext: JSON-quoted values holding ',' or ':', extra fields such as
// hashes) parses back into the prompt, the negative prompt and every field.
TEST(GenerationParameters, ReadsA1111sInfotext) {
  const std::string text =
      "masterpiece, a castle on a hill\nat dusk\nNegative prompt: lowres, bad anatomy\n"
      "Steps: 30, Sampler: DPM++ 2M Karras, CFG scale: 7.5, Seed: 1234567890, Size: 832x1216, "
      "Model hash: 31e35c80fc, Model: sd_xl_base_1.0, Lora hashes: \"detail: a1b2, style: c3d4\", Version: v1.7.0";
  const GenerationParameters p = GenerationParameters::parse(text, "test");
  EXPECT_EQ(p.prompt, "masterpiece, a castle on a hill\nat dusk");
  EXPECT_EQ(p.negative_prompt, "lowres, bad anatomy");
  EXPECT_EQ(p.get("Steps"), "30");
  EXPECT_EQ(p.get("Sampler"), "DPM++ 2M Karras");
  EXPECT_EQ(p.get("CFG scale"), "7.5");
  EXPECT_EQ(p.get("Size"), "832x1216");
  EXPECT_EQ(p.get("Lora hashes"), "detail: a1b2, style: c3d4");
  EXPECT_EQ(p.get("Version"), "v1.7.0");
  EXPECT_EQ(GenerationParameters::parse(p.to_text(), "again").fields, p.fields);
  EXPECT_THROW(GenerationParameters::parse("just a caption", "caption"), Error);
}

// --image: image to image from the command line; the strength goes into the parameters and back.
TEST(CliGenerate, ImageToImageFromTheCommandLine) {
  test::TempDir dir;
  const std::vector<std::string> base = {"generate", "--model", test::data("models/sdxl-tiny"), "--prompt", "a cup",
                                         "--image", test::data("images/coffee.png"), "--width", "64", "--height", "64",
                                         "--steps", "4", "--seed", "3"};
  auto with = [&](std::vector<std::string> extra) {
    auto args = base;
    args.insert(args.end(), extra.begin(), extra.end());
    return run(args);
  };
  ASSERT_EQ(with({"--strength", "0.75", "--output", dir.file("a.png")}).code, 0);
  std::string parameters;
  for (const auto& [k, v] : read_png_text(read_file(dir.file("a.png")), "a.png"))
    if (k == "parameters") parameters = v;
  EXPECT_NE(parameters.find("Denoising strength: 0.75"), std::string::npos) << parameters;
  ASSERT_EQ(run({"generate", "--from-png", dir.file("a.png"), "--image", test::data("images/coffee.png"), "--output",
                 dir.file("again.png")}).code, 0);
  EXPECT_EQ(read_file(dir.file("a.png")), read_file(dir.file("again.png")));
  const Result r = with({"--strength", "1.5", "--output", dir.file("bad.png")});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("strength must be in (0, 1]"), std::string::npos) << r.err;
  EXPECT_EQ(run({"generate", "--model", test::data("models/sdxl-tiny"), "--prompt", "a", "--strength", "0.5", "--output",
                 dir.file("bad.png")}).code, 2);
  EXPECT_FALSE(std::filesystem::exists(dir.file("bad.png")));
}

// --refiner: the base hands its last steps to the refiner; the parameters record it and --from-png reruns it.
TEST(CliGenerate, RefinerFromTheCommandLine) {
  test::TempDir dir;
  const std::string base = test::data("models/sdxl-tiny"), refiner = test::data("models/sdxl-tiny-refiner");
  ASSERT_EQ(run({"generate", "--model", base, "--refiner", refiner, "--prompt", "a horse", "--steps", "10", "--seed", "11",
                 "--scheduler", "Euler a", "--output", dir.file("r.png")}).code, 0);
  std::string parameters;
  for (const auto& [k, v] : read_png_text(read_file(dir.file("r.png")), "r.png"))
    if (k == "parameters") parameters = v;
  EXPECT_NE(parameters.find("Refiner: " + refiner + ", Refiner switch at: 0.8"), std::string::npos) << parameters;
  ASSERT_EQ(run({"generate", "--from-png", dir.file("r.png"), "--output", dir.file("again.png")}).code, 0);
  EXPECT_EQ(read_file(dir.file("r.png")), read_file(dir.file("again.png")));  // the generator continues in both
  // A refiner given as the base (text to image), --denoising-end alone: usage errors before any weight is read.
  Result r = run({"generate", "--model", refiner, "--prompt", "a horse", "--output", dir.file("bad.png")});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("is a refiner"), std::string::npos) << r.err;
  r = run({"generate", "--model", base, "--prompt", "a", "--denoising-end", "0.7", "--output", dir.file("bad.png")});
  EXPECT_EQ(r.code, 2);
  r = run({"generate", "--model", base, "--refiner", refiner, "--denoising-end", "1.5", "--prompt", "a", "--output",
           dir.file("bad.png")});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("denoising_end must be in (0, 1)"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir.file("bad.png")));
  // The refiner alone as image to image.
  EXPECT_EQ(run({"generate", "--model", refiner, "--image", test::data("images/coffee.png"), "--width", "64", "--height",
                 "64", "--prompt", "a cup", "--steps", "10", "--seed", "1", "--output", dir.file("i.png")}).code, 0);
}

// --mask: inpainting from the command line, with the base and with an inpainting UNet; bad masks refused.
TEST(CliGenerate, InpaintingFromTheCommandLine) {
  test::TempDir dir;
  const std::string coffee = test::data("images/coffee.png");
  // A mask of the image's size: the ellipse mask scaled up (any greyscale-convertible picture will do).
  write_file_atomically(dir.file("mask.png"), encode_png(resize(load_image(test::data("images/mask_ellipse.png")), 600, 400,
                                                                Resample::Bilinear)));
  for (const std::string model : {"sdxl-tiny", "sdxl-tiny-inpaint"}) {
    ASSERT_EQ(run({"generate", "--model", test::data("models/" + model), "--prompt", "a cup", "--image", coffee, "--mask",
                   dir.file("mask.png"), "--steps", "4", "--seed", "2", "--output", dir.file(model + ".png")}).code, 0)
        << model;
    EXPECT_EQ(load_image(dir.file(model + ".png")).width, 64);  // the model's size, not the image's
  }
  ASSERT_EQ(run({"generate", "--from-png", dir.file("sdxl-tiny.png"), "--image", coffee, "--output", dir.file("again.png")}).code, 0);
  EXPECT_EQ(read_file(dir.file("sdxl-tiny.png")), read_file(dir.file("again.png")));
  // A blurred mask repaints a softened region: another image, its radius in the parameters.
  ASSERT_EQ(run({"generate", "--model", test::data("models/sdxl-tiny"), "--prompt", "a cup", "--image", coffee, "--mask",
                 dir.file("mask.png"), "--mask-blur", "33", "--steps", "4", "--seed", "2", "--output", dir.file("blur.png")}).code, 0);
  EXPECT_NE(load_image(dir.file("blur.png")).rgb, load_image(dir.file("sdxl-tiny.png")).rgb);
  // Only the masked area, pasted back into the original (a 64×64 picture and its mask): the parameters
  // carry A1111's "Inpaint area", and --from-png reruns it.
  const std::string small = test::data("images/inpaint_crop_image.png"), small_mask = test::data("images/inpaint_crop_mask.png");
  ASSERT_EQ(run({"generate", "--model", test::data("models/sdxl-tiny"), "--prompt", "a cup", "--image", small, "--mask", small_mask,
                 "--mask-padding", "4", "--steps", "4", "--seed", "2", "--output", dir.file("only.png")}).code, 0);
  std::string parameters;
  for (const auto& [k, v] : read_png_text(read_file(dir.file("only.png")), "only.png"))
    if (k == "parameters") parameters = v;
  EXPECT_NE(parameters.find("Inpaint area: Only masked, Masked area padding: 4"), std::string::npos) << parameters;
  ASSERT_EQ(run({"generate", "--from-png", dir.file("only.png"), "--image", small, "--output", dir.file("only2.png")}).code, 0);
  EXPECT_EQ(read_file(dir.file("only.png")), read_file(dir.file("only2.png")));
  EXPECT_EQ(run({"generate", "--model", test::data("models/sdxl-tiny"), "--prompt", "a", "--image", small, "--mask-padding", "4",
                 "--output", dir.file("bad.png")}).code, 2);
  Result r = run({"generate", "--model", test::data("models/sdxl-tiny"), "--prompt", "a", "--image", coffee, "--mask",
                  test::data("images/mask_ellipse.png"), "--output", dir.file("bad.png")});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("a mask covers its image pixel for pixel"), std::string::npos) << r.err;
  r = run({"generate", "--model", test::data("models/sdxl-tiny"), "--prompt", "a", "--mask", dir.file("mask.png"), "--output",
           dir.file("bad.png")});
  EXPECT_EQ(r.code, 2);
  r = run({"generate", "--model", test::data("models/sdxl-tiny-inpaint"), "--prompt", "a", "--output", dir.file("bad.png")});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("inpainting UNet"), std::string::npos) << r.err;
  write_file_atomically(dir.file("text.png"), "not an image");
  r = run({"generate", "--model", test::data("models/sdxl-tiny"), "--prompt", "a", "--image", coffee, "--mask", dir.file("text.png"),
           "--output", dir.file("bad.png")});
  EXPECT_NE(r.code, 0);
  EXPECT_FALSE(std::filesystem::exists(dir.file("bad.png")));
}

// --preview-every N: the latents so far, decoded into a preview PNG beside the output.
TEST(CliGenerate, PreviewEveryNStepsWritesADecodedPreview) {
  test::TempDir dir;
  const Result r = run({"generate", "--model", test::data("models/sdxl-tiny"), "--prompt", "a horse", "--steps", "4", "--seed", "1",
                        "--preview-every", "2", "--output", dir.file("h.png")});
  ASSERT_EQ(r.code, 0) << r.err;
  const Image preview = load_image(dir.file("h.preview.png")), image = load_image(dir.file("h.png"));
  EXPECT_EQ(preview.width, image.width);
  EXPECT_NE(preview.rgb, image.rgb);  // after 2 of 4 steps
  std::string note;
  for (const auto& [k, v] : read_png_text(read_file(dir.file("h.preview.png")), "preview"))
    if (k == "preview") note = v;
  EXPECT_EQ(note, "after 2 UNet steps");
  EXPECT_EQ(run({"generate", "--model", test::data("models/sdxl-tiny"), "--prompt", "a", "--preview", dir.file("p.png"),
                 "--output", dir.file("x.png")}).code, 2);
}

// --lora and <lora:…> tags: the adapters change the image, the parameters record them (the prompt keeps its
// tags, as A1111's), --from-png reruns it bit for bit; an adapter file that is no adapter is exit 2 before
// the pipeline loads, with no output.
TEST(CliGenerate, LoraFromTheCommandLineAndThePrompt) {
  test::TempDir dir;
  const std::string model = test::data("models/sdxl-tiny"), loras = test::data("lora");
  const std::string peft = loras + "/sdxl-tiny-peft.safetensors";
  auto png_parameters = [](const std::string& file) {
    for (const auto& [k, v] : read_png_text(read_file(file), file))
      if (k == "parameters") return v;
    return std::string();
  };
  ASSERT_EQ(run({"generate", "--model", model, "--prompt", "a horse", "--steps", "2", "--seed", "3", "--output", dir.file("base.png")}).code, 0);
  ASSERT_EQ(run({"generate", "--model", model, "--prompt", "a horse", "--steps", "2", "--seed", "3", "--lora", peft + ":0.8",
                 "--output", dir.file("flag.png")}).code, 0);
  EXPECT_NE(read_file(dir.file("flag.png")), read_file(dir.file("base.png")));
  EXPECT_NE(png_parameters(dir.file("flag.png")).find("LoRA: \"" + peft + ":0.8\""), std::string::npos) << png_parameters(dir.file("flag.png"));
  ASSERT_EQ(run({"generate", "--from-png", dir.file("flag.png"), "--output", dir.file("again.png")}).code, 0);
  EXPECT_EQ(read_file(dir.file("flag.png")), read_file(dir.file("again.png")));
  // The same adapter from a prompt tag: the same latents, since the tag is taken out of the text.
  ASSERT_EQ(run({"generate", "--model", model, "--prompt", "a horse<lora:sdxl-tiny-peft:0.8>", "--lora-dir", loras, "--steps", "2",
                 "--seed", "3", "--output", dir.file("tag.png")}).code, 0);
  const auto pixels = [](const std::string& f) { return load_image(f).rgb; };
  EXPECT_EQ(pixels(dir.file("tag.png")), pixels(dir.file("flag.png")));
  EXPECT_NE(png_parameters(dir.file("tag.png")).find("a horse<lora:sdxl-tiny-peft:0.8>"), std::string::npos);
  ASSERT_EQ(run({"generate", "--from-png", dir.file("tag.png"), "--output", dir.file("tag2.png")}).code, 0);
  EXPECT_EQ(read_file(dir.file("tag.png")), read_file(dir.file("tag2.png")));
  // A model file given as an adapter; a tag without --lora-dir.
  Result r = run({"generate", "--model", model, "--prompt", "a", "--lora", model + "/unet/diffusion_pytorch_model.safetensors",
                  "--output", dir.file("bad.png")});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("model checkpoint rather than an adapter"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("loaded the pipeline"), std::string::npos) << r.err;
  r = run({"generate", "--model", model, "--prompt", "a <lora:x:1>", "--output", dir.file("bad.png")});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--lora-dir"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir.file("bad.png")));
}

// --turbo: trailing spacing, 1 step, guidance 0 (one UNet batch), recorded so --from-png reruns it.
TEST(CliGenerate, TurboDefaultsAndTheirRecord) {
  test::TempDir dir;
  const std::string model = test::data("models/sdxl-tiny");
  Result r = run({"generate", "--model", model, "--prompt", "a fox", "--turbo", "--width", "64", "--height", "64", "--seed", "2",
                  "--output", dir.file("t.png")});
  ASSERT_EQ(r.code, 0) << r.err;
  std::string parameters;
  for (const auto& [k, v] : read_png_text(read_file(dir.file("t.png")), "t.png"))
    if (k == "parameters") parameters = v;
  EXPECT_NE(parameters.find("Steps: 1, Sampler: Euler, CFG scale: 0"), std::string::npos) << parameters;
  EXPECT_NE(parameters.find("Schedule type: trailing"), std::string::npos) << parameters;
  ASSERT_EQ(run({"generate", "--from-png", dir.file("t.png"), "--output", dir.file("t2.png")}).code, 0);
  EXPECT_EQ(read_file(dir.file("t.png")), read_file(dir.file("t2.png")));
  EXPECT_EQ(run({"generate", "--model", model, "--prompt", "a", "--turbo", "--lcm", "--output", dir.file("bad.png")}).code, 2);
}
