// CLIP against transformers (expected/clip-tiny.safetensors): text and vision towers, projections,
// logits, and the lab's two softmax(dim=0) matrices.
#include <cmath>

#include "io/checkpoint.hpp"
#include "mmx/image_processor.hpp"
#include "models/clip.hpp"
#include "test_util.hpp"

using namespace mmx;

namespace {

constexpr double kClipF32Bound = 1e-5;  // reference fp32 vs fp64: 7.7e-7 text, 8.0e-6 vision hidden states

struct Tiny {
  Checkpoint checkpoint = Checkpoint::open(test::data("models/clip-tiny"));
  WeightLoader loader{checkpoint};
  CLIPModel model{CLIPConfig::from_json(JsonObject::load(test::data("models/clip-tiny/config.json"))), loader};
};

Tensor pixel_values() {
  const auto config = ImageProcessorConfig::load(test::data("models/clip-tiny/preprocessor_config.json"), "clip");
  std::vector<Image> images;
  for (const char* f : {"astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg"})
    images.push_back(load_image(test::data(std::string("images/") + f)));
  return preprocess_images(images, config);
}

Tensor normalized(const Tensor& x) {
  Tensor y = x.clone();
  const int64_t n = y.dim(0), d = y.dim(1);
  for (int64_t r = 0; r < n; ++r) {
    double sq = 0;
    for (int64_t i = 0; i < d; ++i) sq += std::pow(y.data<float>()[r * d + i], 2);
    for (int64_t i = 0; i < d; ++i) y.data<float>()[r * d + i] = static_cast<float>(y.data<float>()[r * d + i] / std::sqrt(sq));
  }
  return y;
}

}  // namespace

TEST(ClipGolden, TextTowerAndProjection) {
  const Tiny tiny;
  const auto expected = SafetensorsFile::open(test::data("expected/clip-tiny.safetensors"));
  const auto out = tiny.model.text_model().forward(expected.get("input_ids"), expected.get("attention_mask"));
  test::expect_close("text_last_hidden_state", out.last_hidden_state, expected.get("text_last_hidden_state"), kClipF32Bound);
  test::expect_close("text_pooler_output", out.pooler_output, expected.get("text_pooler_output"), kClipF32Bound);
  test::expect_close("text_embeds", tiny.model.project_text(out.pooler_output), expected.get("text_embeds"), kClipF32Bound);
}

TEST(ClipGolden, VisionTowerProjectionAndLogits) {
  const Tiny tiny;
  const auto expected = SafetensorsFile::open(test::data("expected/clip-tiny.safetensors"));
  const auto out = tiny.model.vision_model().forward(pixel_values());
  test::expect_close("vision_last_hidden_state", out.last_hidden_state, expected.get("vision_last_hidden_state"),
                     kClipF32Bound);
  test::expect_close("vision_pooler_output", out.pooler_output, expected.get("vision_pooler_output"), kClipF32Bound);
  const Tensor image_embeds = tiny.model.project_image(out.pooler_output);
  test::expect_close("image_embeds", image_embeds, expected.get("image_embeds"), kClipF32Bound);
  const Tensor text_embeds = tiny.model.get_text_features(expected.get("input_ids"), expected.get("attention_mask"));
  // logits_per_image = exp(logit_scale) · normalize(image) · normalize(text)ᵀ
  const Tensor img = normalized(image_embeds), txt = normalized(text_embeds);
  test::expect_close("image_embeds_normalized", img, expected.get("image_embeds_normalized"), kClipF32Bound);
  Tensor logits = Tensor::empty({4, 8});
  ops::gemm(false, true, 4, 8, 16, std::exp(tiny.model.logit_scale()), img.data<float>(), 16, txt.data<float>(), 16, 0.f,
            logits.data<float>(), 8);
  test::expect_close("logits_per_image", logits, expected.get("logits_per_image"), kClipF32Bound);
}
