// Placement as a value: models with different placements in one process, each against its reference;
// one Model per folder and placement, shared by every embedder (a CLIP folder read once).
#include <gtest/gtest.h>

#include "mmx/embed.hpp"
#include "mmx/runtime.hpp"
#include "test_util.hpp"

using namespace mmx;

namespace {

constexpr double kBertF32Bound = 1e-5;  // tests/README.md

const std::vector<std::string> kLabTexts = {"Cat with paint",     "rock statue", "frogs on leaf",           "jellyfish",
                                            "Cats don't usually", "like water",  "but this one likes paint", "quite a lot"};

Tensor embed(const TextEmbedder& e, Pooling pooling) {
  EmbedOptions options;
  options.pooling = pooling;
  return e.embed(kLabTexts, options).embeddings;
}

}  // namespace

// bert-tiny (an F32 checkpoint) at CPU F32 and at CPU F16 side by side: the second holds every weight
// rounded to f16, as `.half()` rounds them, which is exactly the bert-tiny-f16 fixture whose outputs
// transformers computed in f32: each model meets its own reference, called in turn.
TEST(Placement, TwoPlacementsOfOneModelInOneProcess) {
  const auto base = SafetensorsFile::open(test::data("expected/bert-tiny.safetensors"));
  const auto half = SafetensorsFile::open(test::data("expected/bert-tiny-f16.safetensors"));
  const std::string folder = test::data("models/bert-tiny");
  const TextEmbedder f32(Model::load(folder, Placement{Device::cpu(), DType::F32}));
  const TextEmbedder f16(Model::load(folder, Placement{Device::cpu(), DType::F16}));
  EXPECT_NE(&f32.model(), &f16.model());
  EXPECT_EQ(f16.model().placement().dtype, DType::F16);
  EXPECT_EQ(f16.model().placement().activation_dtype(), DType::F32);  // the CPU computes in f32
  for (int round = 0; round < 2; ++round) {  // interleaved: neither load changed the other
    test::expect_close("cpu f32: seed_avg_embeds", embed(f32, Pooling::Lab), base.get("seed_avg_embeds"), kBertF32Bound);
    test::expect_close("cpu f16 weights: f16_weights_seed_avg_embeds", embed(f16, Pooling::Lab),
                       half.get("f16_weights_seed_avg_embeds"), kBertF32Bound);
    test::expect_close("cpu f16 weights: f16_weights_cls", embed(f16, Pooling::Cls), half.get("f16_weights_cls"),
                       kBertF32Bound);
    test::expect_close("cpu f32: masked_mean_no_cls", embed(f32, Pooling::MeanNoCls), base.get("masked_mean_no_cls"),
                       kBertF32Bound);
  }
  // The two differ by the rounding of the weights (the fixtures differ by up to 3.4e-3): not one model twice.
  EXPECT_GT(test::diff(embed(f16, Pooling::Lab), embed(f32, Pooling::Lab)).max_abs, 1e-5);
  // A third on the GPU, in f16 activations, when one is visible. Provisional bound (tests/README.md): f16
  // activations through two layers of values up to 3.5, not yet measured on a GPU.
  if (const auto gpu = test::cuda_device()) {
    const TextEmbedder cuda(Model::load(folder, Placement{*gpu, DType::F16}));
    test::expect_close("cuda f16: f16_weights_seed_avg_embeds", embed(cuda, Pooling::Lab),
                       half.get("f16_weights_seed_avg_embeds"), 2e-2);
    test::expect_close("cpu f32 after the GPU model", embed(f32, Pooling::Lab), base.get("seed_avg_embeds"), kBertF32Bound);
  }
}

// One Model per folder and placement while someone holds it: the text and image sides of a CLIP
// folder share one load (one "loading" line at info level), a second placement is a second model.
TEST(Placement, AClipFolderIsReadOnceForTextsAndImages) {
  const std::string clip = test::data("models/clip-tiny");
  const LogLevel saved = log_level();
  set_log_level(LogLevel::Info);
  testing::internal::CaptureStderr();
  {
    const auto text = TextEmbedder::load(clip, test::placement());
    const auto image = ImageEmbedder::load(clip, test::placement());
    EXPECT_EQ(&text->model(), &image->model());
    EmbedOptions options;
    const Tensor texts = text->embed({"a cat"}, options).embeddings;
    const Tensor images = image->embed({load_image(test::data("images/chelsea.png"))}, options).embeddings;
    EXPECT_EQ(texts.dim(1), images.dim(1));  // one joint space: get_text_features and get_image_features
  }
  const std::string log = testing::internal::GetCapturedStderr();
  set_log_level(saved);
  size_t loads = 0;
  for (size_t at = log.find("loading "); at != std::string::npos; at = log.find("loading ", at + 1)) ++loads;
  EXPECT_EQ(loads, 1u) << log;
  // Released by every holder, it is loaded again on the next request; another placement is another model.
  const auto a = Model::load(clip, Placement{Device::cpu(), DType::F32});
  const auto b = Model::load(clip, Placement{Device::cpu(), DType::BF16});
  EXPECT_NE(a.get(), b.get());
  EXPECT_EQ(Model::load(clip, Placement{Device::cpu(), DType::F32}).get(), a.get());
}
