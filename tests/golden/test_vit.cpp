// ViT against transformers (expected/vit-tiny*.safetensors), and a ViT of another shape against a
// float64 forward written here.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include "io/checkpoint.hpp"
#include "mmx/classify.hpp"
#include "mmx/embed.hpp"
#include "models/vit.hpp"
#include "test_util.hpp"

using namespace mmx;

namespace {

constexpr double kVitF32Bound = 1e-5;  // tests/README.md: the reference's own fp32 vs fp64 spread is 3.9e-6

std::vector<Image> lab_images() {
  std::vector<Image> images;
  for (const char* f : {"astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg"})
    images.push_back(load_image(test::data(std::string("images/") + f)));
  return images;
}

}  // namespace

TEST(VitGolden, HiddenStatesPoolerAndTheLabsMean) {
  const auto expected = SafetensorsFile::open(test::data("expected/vit-tiny.safetensors"));
  const auto embedder = ImageEmbedder::load(test::data("models/vit-tiny"), test::placement());
  const auto images = lab_images();
  for (auto [pooling, key] : {std::pair{Pooling::MeanNoCls, "image_avg_embeds"}, {Pooling::Lab, "image_avg_embeds"},
                              {Pooling::Pooler, "pooler_output"}}) {
    EmbedOptions options;
    options.pooling = pooling;
    options.token_embeddings = true;
    const EmbedResult r = embedder->embed(images, options);
    test::expect_close(str("vit ", pooling_name(pooling), " vs ", key), r.embeddings, expected.get(key), kVitF32Bound);
    test::expect_close("vit last_hidden_state", r.last_hidden_state, expected.get("last_hidden_state"), kVitF32Bound);
  }
}

TEST(VitGolden, ClassifierLogitsAndProbabilities) {
  const auto expected = SafetensorsFile::open(test::data("expected/vit-tiny-classifier.safetensors"));
  const auto classifier = ImageClassifier::load(test::data("models/vit-tiny-classifier"), test::placement());
  const auto images = lab_images();
  test::expect_close("classifier logits", classifier->logits(images), expected.get("logits"), kVitF32Bound);
  const auto top = classifier->classify(images, 10);
  Tensor probs = Tensor::empty({4, 10});
  for (int i = 0; i < 4; ++i)
    for (const auto& p : top[i]) probs.data<float>()[i * 10 + p.id] = p.probability;
  test::expect_close("classifier probs", probs, expected.get("probs"), kVitF32Bound);
  EXPECT_EQ(classifier->label(1), "tabby cat");
  for (int i = 0; i < 4; ++i)
    for (size_t j = 1; j < top[i].size(); ++j) EXPECT_GE(top[i][j - 1].probability, top[i][j].probability);
}

TEST(VitGolden, ClassifierCheckpointLoadsAsBackboneWithoutPooler) {
  const auto embedder = ImageEmbedder::load(test::data("models/vit-tiny-classifier"), test::placement());
  EmbedOptions options;
  options.pooling = Pooling::Pooler;
  try {
    embedder->embed(lab_images(), options);
    ADD_FAILURE() << "pooler_output from a checkpoint without pooler weights";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no pooler weights"), std::string::npos) << e.what();
  }
  options.pooling = Pooling::Cls;
  EXPECT_EQ(shape_str(embedder->embed(lab_images(), options).embeddings.shape()), "[4, 32]");
}

TEST(VitGolden, NoImageDependsOnTheOthersInItsBatch) {
  const auto embedder = ImageEmbedder::load(test::data("models/vit-tiny"), test::placement());
  const auto images = lab_images();
  const Tensor together = embedder->embed(images, EmbedOptions{}).embeddings;
  for (size_t i = 0; i < images.size(); ++i) {
    const Tensor alone = embedder->embed({images[i]}, EmbedOptions{}).embeddings;
    test::expect_close(str("image ", i, " alone vs in the batch"), alone, together.narrow0(int64_t(i), 1), 1e-6);
  }
}

// ---- Another shape: 40×48 images, 8×16 patches, 3 layers, hidden 24, 3 heads, no qkv bias,
// quick_gelu, pooler of 10 with relu. Reference: float64, written from modeling_vit.py.

namespace {

using Mat = std::vector<double>;

Mat ref_linear(const Mat& x, int64_t rows, int64_t in, const Tensor& w, const Tensor* b, int64_t out) {
  Mat y(size_t(rows * out));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < out; ++o) {
      double s = b ? b->data<float>()[o] : 0.0;
      for (int64_t i = 0; i < in; ++i) s += x[r * in + i] * w.data<float>()[o * in + i];
      y[r * out + o] = s;
    }
  return y;
}

Mat ref_layer_norm(Mat x, int64_t rows, int64_t c, const Tensor& w, const Tensor& b, double eps) {
  for (int64_t r = 0; r < rows; ++r) {
    double mean = 0, var = 0;
    for (int64_t i = 0; i < c; ++i) mean += x[r * c + i] / c;
    for (int64_t i = 0; i < c; ++i) var += (x[r * c + i] - mean) * (x[r * c + i] - mean) / c;
    for (int64_t i = 0; i < c; ++i)
      x[r * c + i] = (x[r * c + i] - mean) / std::sqrt(var + eps) * w.data<float>()[i] + b.data<float>()[i];
  }
  return x;
}

}  // namespace

TEST(VitGolden, AnotherShapeAgainstFloat64) {
  test::TempDir dir;
  std::ofstream(dir.file("config.json")) << R"({"model_type": "vit", "hidden_size": 24, "num_hidden_layers": 3,
    "num_attention_heads": 3, "intermediate_size": 30, "hidden_act": "quick_gelu", "image_size": [40, 48],
    "patch_size": [8, 16], "qkv_bias": false, "pooler_output_size": 10, "pooler_act": "relu", "layer_norm_eps": 1e-6})";
  const ViTConfig c = ViTConfig::from_json(JsonObject::load(dir.file("config.json")));
  ASSERT_EQ(c.num_patches(), 15);
  std::mt19937 rng(9);
  std::normal_distribution<float> normal(0.f, 0.3f);
  std::map<std::string, Tensor> w;
  auto add = [&](const std::string& name, Shape shape, float mean = 0.f) {
    Tensor t = Tensor::empty(std::move(shape));
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = mean + normal(rng);
    w[name] = t;
  };
  add("embeddings.cls_token", {1, 1, 24});
  add("embeddings.position_embeddings", {1, 16, 24});
  add("embeddings.patch_embeddings.projection.weight", {24, 3, 8, 16});
  add("embeddings.patch_embeddings.projection.bias", {24});
  for (int l = 0; l < 3; ++l) {
    const std::string L = "encoder.layer." + std::to_string(l) + ".";
    for (const char* n : {"query", "key", "value"}) add(L + "attention.attention." + n + ".weight", {24, 24});
    add(L + "attention.output.dense.weight", {24, 24});
    add(L + "attention.output.dense.bias", {24});
    add(L + "intermediate.dense.weight", {30, 24});
    add(L + "intermediate.dense.bias", {30});
    add(L + "output.dense.weight", {24, 30});
    add(L + "output.dense.bias", {24});
    for (const char* n : {"layernorm_before", "layernorm_after"}) {
      add(L + n + ".weight", {24}, 1.f);
      add(L + n + ".bias", {24});
    }
  }
  add("layernorm.weight", {24}, 1.f);
  add("layernorm.bias", {24});
  add("pooler.dense.weight", {10, 24});
  add("pooler.dense.bias", {10});
  write_safetensors(dir.file("model.safetensors"), std::vector<std::pair<std::string, Tensor>>(w.begin(), w.end()));
  const Checkpoint checkpoint = Checkpoint::open(dir.path.string());
  WeightLoader loader(checkpoint, test::placement());
  const ViTModel model(c, loader);

  const int64_t batch = 2, T = 16, C = 24, D = 8;
  Tensor pixels = Tensor::empty({batch, 3, 40, 48});
  for (int64_t i = 0; i < pixels.numel(); ++i) pixels.data<float>()[i] = normal(rng);
  const ViTOutputs out = model.forward(pixels);
  Tensor want_hidden = Tensor::empty({batch, T, C}), want_pooled = Tensor::empty({batch, 10});
  for (int64_t b = 0; b < batch; ++b) {
    Mat x(size_t(T * C));
    for (int64_t e = 0; e < C; ++e) x[e] = w["embeddings.cls_token"].data<float>()[e];
    for (int64_t p = 0; p < 15; ++p)  // conv with stride = kernel over the 5×3 grid
      for (int64_t o = 0; o < C; ++o) {
        double s = w["embeddings.patch_embeddings.projection.bias"].data<float>()[o];
        for (int64_t ch = 0; ch < 3; ++ch)
          for (int64_t y = 0; y < 8; ++y)
            for (int64_t xx = 0; xx < 16; ++xx)
              s += double(pixels.data<float>()[((b * 3 + ch) * 40 + (p / 3) * 8 + y) * 48 + (p % 3) * 16 + xx]) *
                   w["embeddings.patch_embeddings.projection.weight"].data<float>()[((o * 3 + ch) * 8 + y) * 16 + xx];
        x[(p + 1) * C + o] = s;
      }
    for (int64_t i = 0; i < T * C; ++i) x[i] += w["embeddings.position_embeddings"].data<float>()[i];
    for (int l = 0; l < 3; ++l) {
      const std::string L = "encoder.layer." + std::to_string(l) + ".";
      const Mat h = ref_layer_norm(x, T, C, w[L + "layernorm_before.weight"], w[L + "layernorm_before.bias"], 1e-6);
      const Mat q = ref_linear(h, T, C, w[L + "attention.attention.query.weight"], nullptr, C);
      const Mat k = ref_linear(h, T, C, w[L + "attention.attention.key.weight"], nullptr, C);
      const Mat v = ref_linear(h, T, C, w[L + "attention.attention.value.weight"], nullptr, C);
      Mat ctx(size_t(T * C), 0.0);
      for (int64_t hd = 0; hd < 3; ++hd)
        for (int64_t i = 0; i < T; ++i) {
          std::vector<double> s(static_cast<size_t>(T));
          double mx = -1e300, sum = 0;
          for (int64_t j = 0; j < T; ++j) {
            double dot = 0;
            for (int64_t e = 0; e < D; ++e) dot += q[i * C + hd * D + e] * k[j * C + hd * D + e];
            mx = std::max(mx, s[j] = dot / std::sqrt(double(D)));
          }
          for (auto& e : s) sum += (e = std::exp(e - mx));
          for (int64_t j = 0; j < T; ++j)
            for (int64_t e = 0; e < D; ++e) ctx[i * C + hd * D + e] += s[j] / sum * v[j * C + hd * D + e];
        }
      Mat a = ref_linear(ctx, T, C, w[L + "attention.output.dense.weight"], &w[L + "attention.output.dense.bias"], C);
      for (size_t i = 0; i < a.size(); ++i) a[i] += x[i];
      Mat m = ref_linear(ref_layer_norm(a, T, C, w[L + "layernorm_after.weight"], w[L + "layernorm_after.bias"], 1e-6), T,
                         C, w[L + "intermediate.dense.weight"], &w[L + "intermediate.dense.bias"], 30);
      for (auto& e : m) e = e / (1 + std::exp(-1.702 * e));  // quick_gelu
      Mat o = ref_linear(m, T, 30, w[L + "output.dense.weight"], &w[L + "output.dense.bias"], C);
      for (size_t i = 0; i < o.size(); ++i) o[i] += a[i];
      x = o;
    }
    x = ref_layer_norm(x, T, C, w["layernorm.weight"], w["layernorm.bias"], 1e-6);
    for (int64_t i = 0; i < T * C; ++i) want_hidden.data<float>()[b * T * C + i] = static_cast<float>(x[i]);
    const Mat pooled = ref_linear(Mat(x.begin(), x.begin() + C), 1, C, w["pooler.dense.weight"], &w["pooler.dense.bias"], 10);
    for (int64_t i = 0; i < 10; ++i) want_pooled.data<float>()[b * 10 + i] = static_cast<float>(std::max(0.0, pooled[i]));
  }
  test::expect_close("vit other shape last_hidden_state", out.last_hidden_state, want_hidden, kVitF32Bound);
  test::expect_close("vit other shape pooler_output", out.pooler_output, want_pooled, kVitF32Bound);
  EXPECT_THROW(model.forward(Tensor::zeros({1, 3, 48, 40})), Error);  // wrong size
}
