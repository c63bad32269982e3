// CLIP against transformers (expected/clip-tiny.safetensors): text and vision towers, projections,
// logits, and the lab's two softmax(dim=0) matrices.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <random>

#include "io/checkpoint.hpp"
#include "mmx/image_processor.hpp"
#include "models/clip.hpp"
#include "test_util.hpp"

using namespace mmx;

namespace {

constexpr double kClipF32Bound = 1e-5;  // reference fp32 vs fp64: 7.7e-7 text, 8.0e-6 vision hidden states

struct Tiny {
  Checkpoint checkpoint = Checkpoint::open(test::data("models/clip-tiny"));
  WeightLoader loader{checkpoint, test::placement()};
  CLIPModel model{CLIPConfig::from_json(JsonObject::load(test::data("models/clip-tiny/config.json"))), loader};
};

Tensor pixel_values() {
  const auto config = ImageProcessorConfig::load(test::data("models/clip-tiny/preprocessor_config.json"), "CLIPImageProcessor");
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

// ---- CLIP towers of other shapes, as text-only and vision-only checkpoints (SDXL's text encoders
// are such files), against a float64 forward written from modeling_clip.py.


namespace {

using Mat = std::vector<double>;
using Weights = std::map<std::string, Tensor>;

Mat lin(const Mat& x, int64_t rows, int64_t in, const Weights& w, const std::string& name, int64_t out, bool bias = true) {
  Mat y(size_t(rows * out));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < out; ++o) {
      double s = bias ? w.at(name + ".bias").data<float>()[o] : 0.0;
      for (int64_t i = 0; i < in; ++i) s += x[r * in + i] * w.at(name + ".weight").data<float>()[o * in + i];
      y[r * out + o] = s;
    }
  return y;
}

Mat norm(Mat x, int64_t rows, int64_t c, const Weights& w, const std::string& name) {
  for (int64_t r = 0; r < rows; ++r) {
    double mean = 0, var = 0;
    for (int64_t i = 0; i < c; ++i) mean += x[r * c + i] / c;
    for (int64_t i = 0; i < c; ++i) var += (x[r * c + i] - mean) * (x[r * c + i] - mean) / c;
    for (int64_t i = 0; i < c; ++i)
      x[r * c + i] = (x[r * c + i] - mean) / std::sqrt(var + 1e-5) * w.at(name + ".weight").data<float>()[i] +
                     w.at(name + ".bias").data<float>()[i];
  }
  return x;
}

// One CLIPEncoderLayer: pre-norm attention (causal and padding masks) and MLP with `act`.
Mat layer(const Mat& x, int64_t t, int64_t c, int64_t heads, int64_t inter, const Weights& w, const std::string& L,
          bool causal, const std::vector<int64_t>& mask, double (*act)(double)) {
  const Mat h = norm(x, t, c, w, L + "layer_norm1");
  const Mat q = lin(h, t, c, w, L + "self_attn.q_proj", c), k = lin(h, t, c, w, L + "self_attn.k_proj", c),
            v = lin(h, t, c, w, L + "self_attn.v_proj", c);
  const int64_t d = c / heads;
  Mat ctx(size_t(t * c), 0.0);
  for (int64_t hd = 0; hd < heads; ++hd)
    for (int64_t i = 0; i < t; ++i) {
      std::vector<double> s(static_cast<size_t>(t));
      double mx = -1e300, sum = 0;
      for (int64_t j = 0; j < t; ++j) {
        double dot = 0;
        for (int64_t e = 0; e < d; ++e) dot += q[i * c + hd * d + e] * k[j * c + hd * d + e];
        s[j] = dot / std::sqrt(double(d)) + ((causal && j > i) || (!mask.empty() && !mask[j]) ? -1e30 : 0.0);
        mx = std::max(mx, s[j]);
      }
      for (auto& e : s) sum += (e = std::exp(e - mx));
      for (int64_t j = 0; j < t; ++j)
        for (int64_t e = 0; e < d; ++e) ctx[i * c + hd * d + e] += s[j] / sum * v[j * c + hd * d + e];
    }
  Mat a = lin(ctx, t, c, w, L + "self_attn.out_proj", c);
  for (size_t i = 0; i < a.size(); ++i) a[i] += x[i];
  Mat m = lin(norm(a, t, c, w, L + "layer_norm2"), t, c, w, L + "mlp.fc1", inter);
  for (auto& e : m) e = act(e);
  Mat o = lin(m, t, inter, w, L + "mlp.fc2", c);
  for (size_t i = 0; i < o.size(); ++i) o[i] += a[i];
  return o;
}

struct RandomWeights {
  std::mt19937 rng{17};
  std::normal_distribution<float> normal{0.f, 0.3f};
  Weights w;
  void add(const std::string& name, Shape shape, float mean = 0.f) {
    Tensor t = Tensor::empty(std::move(shape));
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = mean + normal(rng);
    w[name] = t;
  }
  void add_layers(const std::string& prefix, int layers, int64_t c, int64_t inter) {
    for (int l = 0; l < layers; ++l) {
      const std::string L = prefix + "encoder.layers." + std::to_string(l) + ".";
      for (const char* p : {"q_proj", "k_proj", "v_proj", "out_proj"}) {
        add(L + "self_attn." + p + ".weight", {c, c});
        add(L + "self_attn." + p + ".bias", {c});
      }
      add(L + "mlp.fc1.weight", {inter, c});
      add(L + "mlp.fc1.bias", {inter});
      add(L + "mlp.fc2.weight", {c, inter});
      add(L + "mlp.fc2.bias", {c});
      for (const char* n : {"layer_norm1", "layer_norm2"}) {
        add(L + n + ".weight", {c}, 1.f);
        add(L + n + ".bias", {c});
      }
    }
  }
};

double gelu(double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); }
double quick_gelu(double x) { return x / (1 + std::exp(-1.702 * x)); }

}  // namespace

TEST(ClipGolden, TextModelWithProjectionOfAnotherShape) {
  // hidden 24, 3 heads, 3 layers, intermediate 40, gelu, projection 12, 20 positions, and the current
  // eos rule (eos_token_id 7: pooled at the first 7, not at argmax).
  test::TempDir dir;
  std::ofstream(dir.file("config.json")) << R"({"model_type": "clip_text_model", "vocab_size": 50, "hidden_size": 24,
    "intermediate_size": 40, "num_hidden_layers": 3, "num_attention_heads": 3, "max_position_embeddings": 20,
    "hidden_act": "gelu", "projection_dim": 12, "eos_token_id": 7})";
  RandomWeights r;
  r.add("text_model.embeddings.token_embedding.weight", {50, 24});
  r.add("text_model.embeddings.position_embedding.weight", {20, 24});
  r.add_layers("text_model.", 3, 24, 40);
  r.add("text_model.final_layer_norm.weight", {24}, 1.f);
  r.add("text_model.final_layer_norm.bias", {24});
  r.add("text_projection.weight", {12, 24});
  write_safetensors(dir.file("model.safetensors"), std::vector<std::pair<std::string, Tensor>>(r.w.begin(), r.w.end()));
  const Checkpoint checkpoint = Checkpoint::open(dir.path.string());
  WeightLoader loader(checkpoint, test::placement());
  const CLIPModel model(CLIPConfig::from_json(JsonObject::load(dir.file("config.json"))), loader);
  EXPECT_FALSE(model.has_vision());
  const std::vector<std::vector<int64_t>> ids = {{3, 9, 7, 40, 7, 7}, {3, 1, 2, 4, 49, 7}};
  const std::vector<std::vector<int64_t>> mask = {{1, 1, 1, 0, 0, 0}, {1, 1, 1, 1, 1, 1}};
  std::vector<int64_t> flat_ids, flat_mask;
  for (int b = 0; b < 2; ++b) {
    flat_ids.insert(flat_ids.end(), ids[b].begin(), ids[b].end());
    flat_mask.insert(flat_mask.end(), mask[b].begin(), mask[b].end());
  }
  const Tensor features = model.get_text_features(Tensor::from_vector(flat_ids, {2, 6}), Tensor::from_vector(flat_mask, {2, 6}));
  Tensor want = Tensor::empty({2, 12});
  for (int b = 0; b < 2; ++b) {
    Mat x(6 * 24);
    for (int64_t t = 0; t < 6; ++t)
      for (int64_t e = 0; e < 24; ++e)
        x[t * 24 + e] = double(r.w["text_model.embeddings.token_embedding.weight"].data<float>()[ids[b][t] * 24 + e]) +
                        r.w["text_model.embeddings.position_embedding.weight"].data<float>()[t * 24 + e];
    for (int l = 0; l < 3; ++l)
      x = layer(x, 6, 24, 3, 40, r.w, "text_model.encoder.layers." + std::to_string(l) + ".", true, mask[b], gelu);
    x = norm(x, 6, 24, r.w, "text_model.final_layer_norm");
    const int64_t eos = std::find(ids[b].begin(), ids[b].end(), 7) - ids[b].begin();  // first eos_token_id
    const Mat pooled(x.begin() + eos * 24, x.begin() + (eos + 1) * 24);
    const Mat projected = lin(pooled, 1, 24, r.w, "text_projection", 12, false);
    for (int64_t i = 0; i < 12; ++i) want.data<float>()[b * 12 + i] = static_cast<float>(projected[i]);
  }
  test::expect_close("clip text other shape features vs float64", features, want, 1e-5);
}

TEST(ClipGolden, VisionModelWithProjectionOfAnotherShape) {
  // image 48, patch 16 (3×3 grid), hidden 20, 2 heads, 2 layers, intermediate 28, quick_gelu, projection 6.
  test::TempDir dir;
  std::ofstream(dir.file("config.json")) << R"({"model_type": "clip_vision_model", "hidden_size": 20,
    "intermediate_size": 28, "num_hidden_layers": 2, "num_attention_heads": 2, "image_size": 48, "patch_size": 16,
    "projection_dim": 6})";
  RandomWeights r;
  r.add("vision_model.embeddings.class_embedding", {20});
  r.add("vision_model.embeddings.patch_embedding.weight", {20, 3, 16, 16}, 0.f);
  r.add("vision_model.embeddings.position_embedding.weight", {10, 20});
  r.add("vision_model.pre_layrnorm.weight", {20}, 1.f);
  r.add("vision_model.pre_layrnorm.bias", {20});
  r.add_layers("vision_model.", 2, 20, 28);
  r.add("vision_model.post_layernorm.weight", {20}, 1.f);
  r.add("vision_model.post_layernorm.bias", {20});
  r.add("visual_projection.weight", {6, 20});
  write_safetensors(dir.file("model.safetensors"), std::vector<std::pair<std::string, Tensor>>(r.w.begin(), r.w.end()));
  const Checkpoint checkpoint = Checkpoint::open(dir.path.string());
  WeightLoader loader(checkpoint, test::placement());
  const CLIPModel model(CLIPConfig::from_json(JsonObject::load(dir.file("config.json"))), loader);
  EXPECT_FALSE(model.has_text());
  Tensor pixels = Tensor::empty({2, 3, 48, 48});
  for (int64_t i = 0; i < pixels.numel(); ++i) pixels.data<float>()[i] = r.normal(r.rng);
  const Tensor features = model.get_image_features(pixels);
  Tensor want = Tensor::empty({2, 6});
  for (int64_t b = 0; b < 2; ++b) {
    Mat x(10 * 20);
    for (int64_t e = 0; e < 20; ++e) x[e] = r.w["vision_model.embeddings.class_embedding"].data<float>()[e];
    for (int64_t p = 0; p < 9; ++p)
      for (int64_t o = 0; o < 20; ++o) {
        double s = 0;
        for (int64_t ch = 0; ch < 3; ++ch)
          for (int64_t y = 0; y < 16; ++y)
            for (int64_t xx = 0; xx < 16; ++xx)
              s += double(pixels.data<float>()[((b * 3 + ch) * 48 + (p / 3) * 16 + y) * 48 + (p % 3) * 16 + xx]) *
                   r.w["vision_model.embeddings.patch_embedding.weight"].data<float>()[((o * 3 + ch) * 16 + y) * 16 + xx];
        x[(p + 1) * 20 + o] = s;
      }
    for (int64_t i = 0; i < 200; ++i) x[i] += r.w["vision_model.embeddings.position_embedding.weight"].data<float>()[i];
    x = norm(x, 10, 20, r.w, "vision_model.pre_layrnorm");
    for (int l = 0; l < 2; ++l)
      x = layer(x, 10, 20, 2, 28, r.w, "vision_model.encoder.layers." + std::to_string(l) + ".", false, {}, quick_gelu);
    const Mat pooled = norm(Mat(x.begin(), x.begin() + 20), 1, 20, r.w, "vision_model.post_layernorm");
    const Mat projected = lin(pooled, 1, 20, r.w, "visual_projection", 6, false);
    for (int64_t i = 0; i < 6; ++i) want.data<float>()[b * 6 + i] = static_cast<float>(projected[i]);
  }
  test::expect_close("clip vision other shape features vs float64", features, want, 1e-5);
}
