// SDXL prompt encoding against diffusers 0.30.3 (expected/sdxl-tiny.safetensors): token ids of both
// tokenizers, prompt_embeds (both penultimate hidden states), pooled_prompt_embeds, the zero negative
// embeddings of negative_prompt=None, an explicit "" encoded, the fp16 weight variant, add_time_ids.
#include <array>
#include <filesystem>
#include <vector>

#include "mmx/error.hpp"
#include "mmx/files.hpp"
#include "io/diffusers_folder.hpp"
#include "mmx/sdxl_prompt.hpp"
#include "test_util.hpp"

using namespace mmx;

namespace {
const char* const kPrompt = "An astronaut riding a green horse";
std::string sdxl() { return test::data("models/sdxl-tiny"); }
}  // namespace

TEST(SDXLPrompt, EmbeddingsAreDiffusers) {
  const auto expected = SafetensorsFile::open(test::data("expected/sdxl-tiny.safetensors"));
  const auto encoders = SDXLTextEncoders::load(sdxl(), "", test::placement());
  const SDXLPromptEmbeds e = encoders->encode(kPrompt, std::nullopt);
  test::expect_equal_i64("prompt_input_ids", e.input_ids, expected.get("prompt_input_ids"));
  test::expect_equal_i64("prompt_input_ids_2", e.input_ids_2, expected.get("prompt_input_ids_2"));
  test::expect_close("prompt_embeds", e.prompt_embeds, expected.get("prompt_embeds"), 1e-5);
  test::expect_close("pooled_prompt_embeds", e.pooled_prompt_embeds, expected.get("pooled_prompt_embeds"), 1e-5);
  test::expect_close("negative_prompt_embeds (None → zeros)", e.negative_prompt_embeds,
                     expected.get("negative_prompt_embeds"), 0);
  test::expect_close("negative_pooled_prompt_embeds (None → zeros)", e.negative_pooled_prompt_embeds,
                     expected.get("negative_pooled_prompt_embeds"), 0);
  const SDXLPromptEmbeds empty = encoders->encode(kPrompt, std::string());
  test::expect_close("negative_prompt_embeds_explicit_empty", empty.negative_prompt_embeds,
                     expected.get("negative_prompt_embeds_explicit_empty"), 1e-5);
  test::expect_close("negative_pooled_prompt_embeds_explicit_empty", empty.negative_pooled_prompt_embeds,
                     expected.get("negative_pooled_prompt_embeds_explicit_empty"), 1e-5);
  test::expect_close("add_time_ids", sdxl_add_time_ids(64, 64, 0, 0, 64, 64), expected.get("add_time_ids"), 0);
}

TEST(SDXLPrompt, Fp16VariantMatchesTheFixturesFp16Run) {
  const auto expected = SafetensorsFile::open(test::data("expected/sdxl-tiny.safetensors"));
  const SDXLPromptEmbeds e = SDXLTextEncoders::load(sdxl(), "fp16", test::placement())->encode(kPrompt, std::nullopt);
  test::expect_close("fp16_weights_prompt_embeds", e.prompt_embeds, expected.get("fp16_weights_prompt_embeds"), 1e-5);
  test::expect_close("fp16_weights_pooled_prompt_embeds", e.pooled_prompt_embeds,
                     expected.get("fp16_weights_pooled_prompt_embeds"), 1e-5);
}

TEST(SDXLPrompt, BadFoldersAreClearErrors) {
  auto message = [](const std::string& folder, const std::string& variant = "") {
    try {
      SDXLTextEncoders::load(folder, variant, test::placement());
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  test::TempDir dir;
  EXPECT_NE(message(dir.path.string()).find("no model_index.json"), std::string::npos);
  // A copy of the pipeline with one thing broken at a time.
  const std::string copy = dir.file("p");
  std::filesystem::copy(sdxl(), copy, std::filesystem::copy_options::recursive);
  std::filesystem::remove(copy + "/text_encoder_2/model.safetensors");
  // Only the fp16 file is left: it is used, as diffusers does.
  EXPECT_EQ(message(copy), "no error");
  std::filesystem::remove(copy + "/text_encoder_2/model.fp16.safetensors");
  EXPECT_NE(message(copy).find("text_encoder_2: no model.safetensors or model.fp16.safetensors (found: none)"),
            std::string::npos) << message(copy);
  EXPECT_NE(message(copy, "bf16").find("unknown weight variant 'bf16'"), std::string::npos);
  std::filesystem::remove_all(copy + "/tokenizer_2");
  EXPECT_NE(message(copy).find("the component folder 'tokenizer_2' is missing"), std::string::npos) << message(copy);
  std::filesystem::copy(sdxl() + "/tokenizer_2", copy + "/tokenizer_2", std::filesystem::copy_options::recursive);
  std::filesystem::remove_all(copy + "/unet");
  EXPECT_NE(message(copy).find("the component folder 'unet' is missing"), std::string::npos) << message(copy);
  const std::string index = read_file(copy + "/model_index.json");
  for (const auto& [from, to, says] : std::vector<std::array<std::string, 3>>{
           {"EulerDiscreteScheduler", "KDPM2DiscreteScheduler",
            "scheduler is a KDPM2DiscreteScheduler; this mmx implements EulerDiscreteScheduler or EulerAncestralDiscreteScheduler"},
           {"\"UNet2DConditionModel", "\"UNetSpatioTemporalConditionModel",
            "unet is a UNetSpatioTemporalConditionModel; this mmx implements UNet2DConditionModel there"}}) {
    std::string changed = index;
    changed.replace(changed.find(from), from.size(), to);
    write_file_atomically(copy + "/model_index.json", changed);
    EXPECT_NE(message(copy).find(says), std::string::npos) << message(copy);
  }
  std::string no_vae = index;
  no_vae.replace(no_vae.find("\"vae\""), 5, "\"vae_\"");
  write_file_atomically(copy + "/model_index.json", no_vae);
  EXPECT_NE(message(copy).find("no component 'vae'"), std::string::npos) << message(copy);
  std::string t5 = index;
  t5.replace(t5.find("CLIPTextModelWithProjection"), 27, "T5EncoderModel");
  write_file_atomically(copy + "/model_index.json", t5);
  EXPECT_NE(message(copy).find("text_encoder_2 is a T5EncoderModel"), std::string::npos) << message(copy);
  std::string other = index;
  other.replace(other.find("StableDiffusionXLPipeline"), 25, "FluxPipeline");
  write_file_atomically(copy + "/model_index.json", other);
  EXPECT_NE(message(copy).find("_class_name 'FluxPipeline' is not supported"), std::string::npos) << message(copy);
}

// Which weights file a component folder offers: safetensors first (plain, sharded, fp16), then PyTorch pickles.
TEST(SDXLPrompt, ComponentWeightsPreferSafetensorsThenPickles) {
  test::TempDir dir;
  const std::string f = dir.path.string();
  auto touch = [&](const std::string& name) { write_file_atomically(f + "/" + name, "x"); };
  touch("diffusion_pytorch_model.bin");
  EXPECT_EQ(component_weights(f, "diffusion_pytorch_model", ""), f + "/diffusion_pytorch_model.bin");
  EXPECT_THROW(component_weights(f, "diffusion_pytorch_model", "fp16"), Error);
  touch("diffusion_pytorch_model.fp16.bin");
  EXPECT_EQ(component_weights(f, "diffusion_pytorch_model", "fp16"), f + "/diffusion_pytorch_model.fp16.bin");
  touch("diffusion_pytorch_model.fp16.safetensors");
  EXPECT_EQ(component_weights(f, "diffusion_pytorch_model", ""), f + "/diffusion_pytorch_model.fp16.safetensors");
  EXPECT_EQ(component_weights(f, "diffusion_pytorch_model", "fp16"), f + "/diffusion_pytorch_model.fp16.safetensors");
  touch("diffusion_pytorch_model.safetensors");
  EXPECT_EQ(component_weights(f, "diffusion_pytorch_model", ""), f + "/diffusion_pytorch_model.safetensors");
  touch("pytorch_model.bin");  // a text encoder's pickle is named by transformers
  EXPECT_EQ(component_weights(f, "model", ""), f + "/pytorch_model.bin");
}
