// --dtype bf16 and --dtype int8 on the CPU against the same model in f32: the quality bounds of
// tests/README.md (bf16: cosine ≥ 0.999 per embedding, the lab's softmaxed matrix within 1e-2; int8:
// cosine ≥ 0.995, zero-shot top-1 unchanged), on the test models and on full-size random-weight models
// built from the real configs (bert-base-uncased, vit-base-patch16-224, clip-vit-base-patch32).
#include <gtest/gtest.h>

#include <cmath>

#include "bench/random_pipeline.hpp"
#include "mmx/classify.hpp"
#include "mmx/embed.hpp"
#include "mmx/image.hpp"
#include "mmx/similarity.hpp"
#include "mmx/text_to_image.hpp"
#include "test_util.hpp"

using namespace mmx;

namespace {

constexpr double kBf16Cosine = 0.999, kInt8Cosine = 0.995, kBf16LabMatrix = 1e-2;  // tests/README.md
// SDXL latents after 4 steps at bf16 vs f32: PSNR over the f32 latents' range. bf16 keeps 8 significant
// bits, so one rounding's RMS error is about range·2⁻⁹/√3 (≈ 60 dB below the range); 40 dB leaves a factor
// of 10 for the growth of the error through the UNet and 4 steps (tests/README.md).
constexpr double kBf16SdxlPsnr = 40.0;

const std::vector<std::string> kLabTexts = {"Cat with paint",     "rock statue", "frogs on leaf",           "jellyfish",
                                            "Cats don't usually", "like water",  "but this one likes paint", "quite a lot"};
const std::vector<std::string> kPhotos = {"chelsea.png", "astronaut.png", "coffee.png", "horse.png", "camera.png"};

std::vector<Image> photos() {
  std::vector<Image> images;
  for (const auto& name : kPhotos) images.push_back(load_image(test::data("images/" + name)));
  return images;
}

Placement cpu(DType dtype) { return Placement{Device::cpu(), dtype}; }

// The smallest cosine similarity between matching rows of a and b, printed with the label.
double worst_cosine(const std::string& label, const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape()) << label;
  const int64_t rows = a.dim(0), d = a.numel() / rows;
  double worst = 1.0;
  for (int64_t r = 0; r < rows; ++r) {
    double dot = 0, na = 0, nb = 0;
    for (int64_t j = 0; j < d; ++j) {
      const double x = a.data<float>()[r * d + j], y = b.data<float>()[r * d + j];
      dot += x * y;
      na += x * x;
      nb += y * y;
    }
    worst = std::min(worst, dot / std::sqrt(na * nb));
  }
  std::printf("  %-48s worst cosine to f32 %.6f\n", label.c_str(), worst);
  return worst;
}

Tensor texts(const std::string& folder, DType dtype, std::optional<Pooling> pooling = std::nullopt) {
  EmbedOptions options;
  options.pooling = pooling;
  return TextEmbedder(Model::load(folder, cpu(dtype))).embed(kLabTexts, options).embeddings;
}

Tensor images(const std::string& folder, DType dtype, std::optional<Pooling> pooling = std::nullopt) {
  EmbedOptions options;
  options.pooling = pooling;
  return ImageEmbedder(Model::load(folder, cpu(dtype))).embed(photos(), options).embeddings;
}

void expect_encoders_within_bounds(const std::string& name, const std::string& folder, bool text, bool image) {
  for (DType dtype : {DType::BF16, DType::I8}) {
    const double bound = dtype == DType::BF16 ? kBf16Cosine : kInt8Cosine;
    const std::string tag = name + " " + (dtype == DType::BF16 ? "bf16" : "int8");
    if (text) EXPECT_GE(worst_cosine(tag + " texts", texts(folder, dtype), texts(folder, DType::F32)), bound);
    if (image) EXPECT_GE(worst_cosine(tag + " images", images(folder, dtype), images(folder, DType::F32)), bound);
  }
}

}  // namespace

TEST(LowPrecision, TestModelsKeepTheirEmbeddings) {
  expect_encoders_within_bounds("bert-tiny", test::data("models/bert-tiny"), true, false);
  expect_encoders_within_bounds("mpnet-tiny", test::data("models/mpnet-tiny"), true, false);
  expect_encoders_within_bounds("xlmr-tiny", test::data("models/xlmr-tiny"), true, false);
  expect_encoders_within_bounds("vit-tiny", test::data("models/vit-tiny"), false, true);
  expect_encoders_within_bounds("clip-tiny", test::data("models/clip-tiny"), true, true);
}

// The lab: BERT texts × ViT images, dot products, softmax over dim 0 (the heatmap's numbers).
TEST(LowPrecision, LabMatrixWithinOneHundredthAtBf16) {
  auto matrix = [](DType dtype) {
    Tensor m = similarity_matrix(texts(test::data("models/bert-tiny"), dtype, Pooling::Lab),
                                 images(test::data("models/vit-tiny"), dtype, Pooling::Lab), Score::Dot);
    softmax_(m, SoftmaxDim::Dim0);
    return m;
  };
  for (DType dtype : {DType::BF16, DType::I8}) {
    const double worst = test::diff(matrix(dtype), matrix(DType::F32)).max_abs;
    std::printf("  lab matrix %s: max |d| %.2e\n", dtype_name(dtype), worst);
    EXPECT_LE(worst, kBf16LabMatrix) << dtype_name(dtype);
  }
}

TEST(LowPrecision, ZeroShotTopOneUnchanged) {
  const std::vector<std::string> labels = {"a cat", "an astronaut", "a cup of coffee", "a horse", "a camera", "a dog"};
  auto top1 = [&](DType dtype) {
    std::vector<std::string> out;
    for (const auto& preds : zero_shot_classify(Model::load(test::data("models/clip-tiny"), cpu(dtype)), photos(), labels,
                                                "a photo of {}", 1))
      out.push_back(preds.at(0).label);
    return out;
  };
  const auto want = top1(DType::F32);
  EXPECT_EQ(top1(DType::I8), want);
  EXPECT_EQ(top1(DType::BF16), want);
}

// Full-size architectures (12 layers, hidden 768) with random weights: where rounding errors add up over
// depth and width as in the real checkpoints. Weights are written once, in f16 (as published fp16 files).
TEST(LowPrecision, FullSizeRandomModelsKeepTheirEmbeddings) {
  const test::TempDir dir;
  const std::string data = test::data("");
  for (const char* name : {"bert-base-uncased", "vit-base-patch16-224", "clip-vit-base-patch32"}) {
    const std::string folder = dir.file(name);
    write_random_model_folder(name, data, folder, DType::F16);
    const bool text = std::string(name) != "vit-base-patch16-224", image = std::string(name) != "bert-base-uncased";
    expect_encoders_within_bounds(name, folder, text, image);
  }
}

// SDXL (the test pipeline): 4 DPM++ steps at bf16 (linear layers and convolutions on the bf16 unit,
// weights rounded) against f32, from the same seed; int8 is refused for generation with the reason.
TEST(LowPrecision, SdxlLatentsAfterFourStepsAtBf16) {
  GenerateOptions o;
  o.prompt = "a lighthouse at dusk";
  o.steps = 4;
  o.seed = 7;
  auto latents = [&](DType dtype) { return SDXLPipeline::load(test::data("models/sdxl-tiny"), "", cpu(dtype))->generate(o).latents; };
  const Tensor f32 = latents(DType::F32), bf16 = latents(DType::BF16);
  const float* a = f32.data<float>();
  const float* b = bf16.data<float>();
  double lo = a[0], hi = a[0], mse = 0;
  for (int64_t i = 0; i < f32.numel(); ++i) {
    lo = std::min(lo, double(a[i]));
    hi = std::max(hi, double(a[i]));
    mse += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
  }
  mse /= double(f32.numel());
  const double psnr = 10 * std::log10((hi - lo) * (hi - lo) / mse);
  std::printf("  sdxl-tiny latents after 4 steps, bf16 vs f32: PSNR %.1f dB (range %.2f)\n", psnr, hi - lo);
  EXPECT_GE(psnr, kBf16SdxlPsnr);
  EXPECT_GT(mse, 0.0) << "bf16 should differ from f32: was it computed in bf16 at all?";
  try {
    SDXLPipeline::load(test::data("models/sdxl-tiny"), "", cpu(DType::I8));
    ADD_FAILURE() << "int8 generation was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Usage);
    EXPECT_NE(std::string(e.what()).find("int8"), std::string::npos) << e.what();
  }
}
