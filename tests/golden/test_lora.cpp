// LoRA adapters on sdxl-tiny against diffusers (expected/sdxl-tiny-lora.safetensors,
// tools/make_lora_reference.py): the weights each file changes, merged, against W + (alpha / r) · up · down
// in float64 on the modules diffusers' own key conversion names; two Euler steps with the adapters applied
// as PEFT's LoRA layers (one adapter, a weight, two adapters at 0.7 / 0.3); the errors a wrong file gets.
#include <cmath>
#include <filesystem>
#include <set>

#include "io/checkpoint.hpp"
#include "io/json_config.hpp"
#include "mmx/error.hpp"
#include "mmx/files.hpp"
#include "mmx/lora.hpp"
#include "mmx/safetensors.hpp"
#include "mmx/text_to_image.hpp"
#include "models/lora.hpp"
#include "models/unet2d_condition.hpp"
#include "test_util.hpp"

using namespace mmx;

namespace {

struct TinyTargets {
  Checkpoint unet = Checkpoint::open(test::data("models/sdxl-tiny/unet/diffusion_pytorch_model.safetensors"));
  Checkpoint te1 = Checkpoint::open(test::data("models/sdxl-tiny/text_encoder/model.safetensors"));
  Checkpoint te2 = Checkpoint::open(test::data("models/sdxl-tiny/text_encoder_2/model.safetensors"));
  UNet2DConditionConfig config = UNet2DConditionConfig::from_json(JsonObject::load(test::data("models/sdxl-tiny/unet/config.json")));
  std::vector<LoraTarget> targets() const {
    return {{"unet", &unet, &config}, {"text_encoder", &te1, nullptr}, {"text_encoder_2", &te2, nullptr}};
  }
};

std::string lora(const std::string& stem) { return test::data("lora/sdxl-tiny-" + stem + ".safetensors"); }

float max_abs(const Tensor& t) {
  float m = 0;
  for (int64_t i = 0; i < t.numel(); ++i) m = std::max(m, std::fabs(t.data<float>()[i]));
  return m;
}

GenerateOptions two_steps(std::vector<LoraWeight> loras) {
  GenerateOptions o;
  o.prompt = "An astronaut riding a green horse";
  o.steps = 2;
  o.seed = 7;
  o.guidance_scale = 5.0f;
  o.keep_step_latents = true;
  o.loras = std::move(loras);
  return o;
}

}  // namespace

// Every weight a file changes, and only those: the merge in f32 (the low-rank product on the GEMM, then
// W + scale · BA) within 4 float32 rounding units of the largest merged value of float64's result.
TEST(Lora, MergedWeightsEqualTheLowRankUpdateOnDiffusersModules) {
  const auto expected = SafetensorsFile::open(test::data("expected/sdxl-tiny-lora.safetensors"));
  const TinyTargets t;
  for (const std::string stem : {"kohya-sgm", "peft", "kohya-te", "peft-te"}) {
    const auto merged = merge_loras(t.targets(), {{LoraFile::open(lora(stem)), 1.0}});
    std::set<std::string> got_names, expected_names;
    const std::string prefix = "merged/" + stem + "/";
    for (const auto& info : expected.tensors())
      if (info.name.compare(0, prefix.size(), prefix) == 0) expected_names.insert(info.name.substr(prefix.size()));
    double worst = 0;
    for (const auto& [component, tensors] : merged)
      for (const auto& [name, tensor] : tensors) {
        const std::string key = component + "." + name;
        got_names.insert(key);
        if (!expected_names.count(key)) continue;
        const Tensor want = expected.get(prefix + key);
        const double bound = 4 * std::ldexp(1.0, -23) * max_abs(want);
        const test::Diff d = test::diff(tensor, want);
        worst = std::max(worst, d.max_abs / bound);
        EXPECT_LE(d.max_abs, bound) << stem << " " << key;
      }
    std::printf("  %-10s %zu weights merged, worst |d| %.2f of the 4-ulp bound\n", stem.c_str(), got_names.size(), worst * 1.0);
    EXPECT_EQ(got_names, expected_names) << stem;
  }
}

TEST(Lora, GenerationFollowsDiffusersWithPeftLayers) {
  const auto expected = SafetensorsFile::open(test::data("expected/sdxl-tiny-lora.safetensors"));
  const auto pipe = SDXLPipeline::load(test::data("models/sdxl-tiny"), "", test::placement());
  const GenerateResult base = pipe->generate(two_steps({}));
  struct Case {
    const char* key;
    std::vector<LoraWeight> loras;
  };
  for (const Case& c : {Case{"kohya-sgm 1.0", {{lora("kohya-sgm"), 1.0}}}, Case{"peft 0.8", {{lora("peft"), 0.8}}},
                        Case{"kohya-sgm 0.7 + peft 0.3", {{lora("kohya-sgm"), 0.7}, {lora("peft"), 0.3}}}}) {
    const GenerateResult r = pipe->generate(two_steps(c.loras));
    test::expect_close(c.key, r.step_latents, expected.get(std::string(c.key) + "/step_latents"), 5e-5);
    EXPECT_GT(test::diff(r.step_latents, base.step_latents).max_abs, 1e-2) << c.key << ": the adapter changed nothing";
  }
  // Switching back: the base weights were never touched by a merge.
  const GenerateResult again = pipe->generate(two_steps({}));
  EXPECT_EQ(test::diff(again.step_latents, base.step_latents).max_abs, 0.0);
}

// Text-encoder adapters change the prompt's embeddings, and a weight of 0 is the base model.
TEST(Lora, TextEncoderAdaptersChangeThePromptAndWeightZeroIsTheBase) {
  const auto pipe = SDXLPipeline::load(test::data("models/sdxl-tiny"), "", test::placement());
  const GenerateResult base = pipe->generate(two_steps({}));
  const GenerateResult zero = pipe->generate(two_steps({{lora("peft-te"), 0.0}}));
  EXPECT_EQ(test::diff(zero.step_latents, base.step_latents).max_abs, 0.0);
  const GenerateResult te = pipe->generate(two_steps({{lora("peft-te"), 1.0}}));
  EXPECT_GT(test::diff(te.step_latents, base.step_latents).max_abs, 1e-3);
}

TEST(Lora, PromptTagsNameFilesInTheLoraDirectory) {
  const PromptLoras p = extract_prompt_loras("a castle <lora:sdxl-tiny-peft:0.8>, at dusk<lora:sdxl-tiny-kohya-sgm>",
                                             test::data("lora"));
  EXPECT_EQ(p.prompt, "a castle , at dusk");
  ASSERT_EQ(p.loras.size(), 2u);
  EXPECT_EQ(std::filesystem::path(p.loras[0].path), std::filesystem::path(lora("peft")));
  EXPECT_DOUBLE_EQ(p.loras[0].weight, 0.8);
  EXPECT_DOUBLE_EQ(p.loras[1].weight, 1.0);
  EXPECT_EQ(extract_prompt_loras("no tags here", "").prompt, "no tags here");
  EXPECT_THROW(extract_prompt_loras("<lora:missing:1>", test::data("lora")), Error);
  EXPECT_THROW(extract_prompt_loras("<lora:sdxl-tiny-peft:lots>", test::data("lora")), Error);
  EXPECT_THROW(extract_prompt_loras("<lora:sdxl-tiny-peft:1>", ""), Error);  // no directory to look in
  EXPECT_THROW(extract_prompt_loras("<lora:sdxl-tiny-peft", test::data("lora")), Error);
  const LoraWeight w = parse_lora_option(lora("peft") + ":0.25");
  EXPECT_EQ(w.path, lora("peft"));
  EXPECT_DOUBLE_EQ(w.weight, 0.25);
  EXPECT_DOUBLE_EQ(parse_lora_option(lora("peft")).weight, 1.0);
  EXPECT_THROW(parse_lora_option(lora("peft") + ":99"), Error);
  EXPECT_THROW(parse_lora_option("nowhere.safetensors"), Error);
}

// A key that fits no module is listed, not skipped; variants that are no down/up pair are refused by name.
TEST(Lora, WrongFilesAreRefusedNamingWhatIsWrong) {
  const TinyTargets t;
  const test::TempDir dir;
  auto write = [&](const std::string& name, const std::vector<std::pair<std::string, Tensor>>& tensors) {
    const std::string path = dir.file(name);
    write_safetensors(path, tensors);
    return path;
  };
  auto message = [&](const std::string& path) {
    try {
      merge_loras(t.targets(), {{LoraFile::open(path), 1.0}});
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::Usage);
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  const Tensor down = Tensor::zeros({2, 4}), up = Tensor::zeros({4, 2});
  EXPECT_NE(message(write("unknown.safetensors", {{"lora_unet_no_such_module.lora_down.weight", down},
                                                  {"lora_unet_no_such_module.lora_up.weight", up}}))
                .find("lora_unet_no_such_module' matches no linear or convolution weight"),
            std::string::npos);
  EXPECT_NE(message(write("dora.safetensors", {{"lora_unet_mid_block_attentions_0_proj_in.lora_down.weight", down},
                                               {"lora_unet_mid_block_attentions_0_proj_in.lora_up.weight", up},
                                               {"lora_unet_mid_block_attentions_0_proj_in.dora_scale", Tensor::zeros({1, 4})}}))
                .find("DoRA"),
            std::string::npos);
  EXPECT_NE(message(write("loha.safetensors", {{"lora_unet_mid_block_attentions_0_proj_in.hada_w1_a", down}})).find("LoHa"),
            std::string::npos);
  EXPECT_NE(message(write("unpaired.safetensors", {{"unet.mid_block.attentions.0.proj_in.lora_A.weight", down}})).find("without its up"),
            std::string::npos);
  EXPECT_NE(message(write("shape.safetensors", {{"unet.mid_block.attentions.0.proj_in.lora_A.weight", Tensor::zeros({2, 5})},
                                                {"unet.mid_block.attentions.0.proj_in.lora_B.weight", up}}))
                .find("does not fit unet.mid_block.attentions.0.proj_in.weight"),
            std::string::npos);
  EXPECT_NE(message(write("stray.safetensors", {{"model.diffusion_model.input_blocks.0.0.weight", down}})).find("no LoRA"),
            std::string::npos);
}
