// The lab's matrices: BERT × ViT (unaligned, expected/seed-part3.safetensors) and CLIP
// (expected/clip-tiny.safetensors seed_*), with the lab's formulas: dot products, softmax(dim=0).
#include <cmath>

#include "mmx/classify.hpp"
#include "mmx/embed.hpp"
#include "mmx/similarity.hpp"
#include "test_util.hpp"

using namespace mmx;

namespace {
const std::vector<std::string> kCaptions = {"Cat with paint", "rock statue", "frogs on leaf", "jellyfish"};
const std::vector<std::string> kDialogue = {"Cats don't usually", "like water", "but this one likes paint", "quite a lot"};

std::vector<Image> lab_images() {
  std::vector<Image> images;
  for (const char* f : {"astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg"})
    images.push_back(load_image(test::data(std::string("images/") + f)));
  return images;
}

Tensor lab_matrix(const Tensor& rows, const Tensor& cols) {
  Tensor m = similarity_matrix(rows, cols, Score::Dot);
  softmax_(m, SoftmaxDim::Dim0);
  return m;
}
}  // namespace

TEST(SimilarityGolden, BertTimesVitWithTheLabsFormulas) {
  const auto expected = SafetensorsFile::open(test::data("expected/seed-part3.safetensors"));
  // The lab embeds its eight texts in one padded batch, with its own pooling.
  std::vector<std::string> texts = kCaptions;
  texts.insert(texts.end(), kDialogue.begin(), kDialogue.end());
  EmbedOptions lab;
  lab.pooling = Pooling::Lab;
  const Tensor text_embeds = TextEmbedder::load(test::data("models/bert-tiny"), test::placement())->embed(texts, lab).embeddings;
  const Tensor captions = text_embeds.narrow0(0, 4).clone(), dialogue = text_embeds.narrow0(4, 4).clone();
  const Tensor images = ImageEmbedder::load(test::data("models/vit-tiny"), test::placement())->embed(lab_images(), EmbedOptions{}).embeddings;
  test::expect_close("captions_avg_embeds", captions, expected.get("captions_avg_embeds"), 1e-5);
  test::expect_close("image_avg_embeds", images, expected.get("image_avg_embeds"), 1e-5);
  test::expect_close("image_image", lab_matrix(images, images), expected.get("image_image"), 1e-5);
  test::expect_close("captions_image", lab_matrix(captions, images), expected.get("captions_image"), 1e-5);
  test::expect_close("dialogue_captions", lab_matrix(dialogue, captions), expected.get("dialogue_captions"), 1e-5);
  test::expect_close("dialogue_image", lab_matrix(dialogue, images), expected.get("dialogue_image"), 1e-5);
}

TEST(SimilarityGolden, ClipEmbeddingsAndTheLabsMatrices) {
  const auto expected = SafetensorsFile::open(test::data("expected/clip-tiny.safetensors"));
  const auto text = TextEmbedder::load(test::data("models/clip-tiny"), test::placement());
  const auto vision = ImageEmbedder::load(test::data("models/clip-tiny"), test::placement());
  std::vector<std::string> texts = kCaptions;
  texts.insert(texts.end(), kDialogue.begin(), kDialogue.end());
  const EmbedResult t = text->embed(texts, EmbedOptions{});
  test::expect_equal_i64("clip input_ids", t.input_ids, expected.get("input_ids"));
  test::expect_close("text_embeds (projection)", t.embeddings, expected.get("text_embeds"), 1e-5);
  const Tensor images = vision->embed(lab_images(), EmbedOptions{}).embeddings;
  test::expect_close("image_embeds (projection)", images, expected.get("image_embeds"), 1e-5);
  EmbedOptions pooled;
  pooled.pooling = Pooling::Pooled;
  test::expect_close("text_pooler_output (pooled)", text->embed(texts, pooled).embeddings,
                     expected.get("text_pooler_output"), 1e-5);
  test::expect_close("vision_pooler_output (pooled)", vision->embed(lab_images(), pooled).embeddings,
                     expected.get("vision_pooler_output"), 1e-5);
  EmbedOptions normalized;
  normalized.normalize = true;
  test::expect_close("text_embeds_normalized", text->embed(texts, normalized).embeddings,
                     expected.get("text_embeds_normalized"), 1e-5);
  test::expect_close("seed_captions_image", lab_matrix(t.embeddings.narrow0(0, 4).clone(), images),
                     expected.get("seed_captions_image"), 1e-5);
  test::expect_close("seed_dialogue_image", lab_matrix(t.embeddings.narrow0(4, 4).clone(), images),
                     expected.get("seed_dialogue_image"), 1e-5);
  test::expect_close("logits_per_text", similarity_matrix(t.embeddings, images, Score::ClipLogits, text->logit_scale()),
                     expected.get("logits_per_text"), 1e-5);
}

TEST(SimilarityGolden, ZeroShotIsSoftmaxOfLogitsPerImage) {
  const auto expected = SafetensorsFile::open(test::data("expected/clip-tiny.safetensors"));
  std::vector<std::string> labels = kCaptions;
  labels.insert(labels.end(), kDialogue.begin(), kDialogue.end());
  const auto predictions = zero_shot_classify(Model::load(test::data("models/clip-tiny"), test::placement()), lab_images(), labels, "{}", 8);
  Tensor want = expected.get("logits_per_image").clone();  // [4, 8]
  softmax_(want, SoftmaxDim::Dim1);
  Tensor got = Tensor::empty({4, 8});
  for (int i = 0; i < 4; ++i)
    for (const auto& p : predictions[i]) got.data<float>()[i * 8 + p.id] = p.probability;
  test::expect_close("zero-shot probabilities", got, want, 1e-6);
  EXPECT_THROW(zero_shot_classify(Model::load(test::data("models/clip-tiny"), test::placement()), lab_images(), {}, "{}", 3), Error);
  EXPECT_THROW(zero_shot_classify(Model::load(test::data("models/clip-tiny"), test::placement()), lab_images(), {"cat"}, "a photo", 3), Error);
}

TEST(Similarity, ScoresSoftmaxAndMismatchedDimensions) {
  const Tensor a = Tensor::from_vector(std::vector<float>{1, 0, 0, 2}, {2, 2});
  const Tensor b = Tensor::from_vector(std::vector<float>{3, 4}, {1, 2});
  const Tensor dot = similarity_matrix(a, b, Score::Dot);
  EXPECT_FLOAT_EQ(dot.data<float>()[0], 3.f);
  EXPECT_FLOAT_EQ(dot.data<float>()[1], 8.f);
  const Tensor cosine = similarity_matrix(a, b, Score::Cosine);
  EXPECT_FLOAT_EQ(cosine.data<float>()[0], 0.6f);
  EXPECT_FLOAT_EQ(cosine.data<float>()[1], 0.8f);
  Tensor m = Tensor::from_vector(std::vector<float>{0, 1, 0, 1}, {2, 2});
  softmax_(m, SoftmaxDim::Dim0);  // each column sums to one
  EXPECT_FLOAT_EQ(m.data<float>()[0] + m.data<float>()[2], 1.f);
  EXPECT_FLOAT_EQ(m.data<float>()[0], 0.5f);
  try {
    similarity_matrix(a, Tensor::zeros({1, 3}), Score::Dot);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("2 dimensions, column embeddings 3"), std::string::npos) << e.what();
  }
  EXPECT_THROW(similarity_matrix(a, b, Score::ClipLogits), Error);
}
