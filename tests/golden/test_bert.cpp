// BERT against transformers: bert-tiny outputs and every pooling mode (expected/bert-tiny.safetensors),
// the sharded copy, the f16 copy, and a BERT of another shape against a float64 reference written here.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include "io/checkpoint.hpp"
#include "mmx/embed.hpp"
#include "models/bert.hpp"
#include "test_util.hpp"

using namespace mmx;

namespace {

constexpr double kBertF32Bound = 1e-5;  // tests/README.md: fp32 vs fp64 spread of the reference is 7.8e-7

const std::vector<std::string> kLabTexts = {"Cat with paint",     "rock statue", "frogs on leaf",           "jellyfish",
                                            "Cats don't usually", "like water",  "but this one likes paint", "quite a lot"};

BertOutputs run_model(const std::string& folder, const SafetensorsFile& expected) {
  const Checkpoint checkpoint = Checkpoint::open(folder);
  WeightLoader loader(checkpoint, test::placement());
  const BertModel model(BertConfig::from_json(JsonObject::load(folder + "/config.json")), loader);
  return model.forward(expected.get("input_ids"), expected.get("token_type_ids"), expected.get("attention_mask"));
}

}  // namespace

TEST(BertGolden, LastHiddenStateAndPooler) {
  const auto expected = SafetensorsFile::open(test::data("expected/bert-tiny.safetensors"));
  const BertOutputs out = run_model(test::data("models/bert-tiny"), expected);
  test::expect_close("last_hidden_state", out.last_hidden_state, expected.get("last_hidden_state"), kBertF32Bound);
  test::expect_close("pooler_output", out.pooler_output, expected.get("pooler_output"), kBertF32Bound);
}

TEST(BertGolden, EveryPoolingModeThroughTheEmbedPipeline) {
  const auto expected = SafetensorsFile::open(test::data("expected/bert-tiny.safetensors"));
  const auto embedder = TextEmbedder::load(test::data("models/bert-tiny"), test::placement());
  const std::pair<Pooling, const char*> modes[] = {{Pooling::Lab, "seed_avg_embeds"},
                                                   {Pooling::MeanNoCls, "masked_mean_no_cls"},
                                                   {Pooling::Mean, "masked_mean"},
                                                   {Pooling::Cls, "cls"},
                                                   {Pooling::Pooler, "pooler_output"}};
  for (auto [pooling, key] : modes) {
    EmbedOptions options;
    options.pooling = pooling;
    options.token_embeddings = true;
    const EmbedResult r = embedder->embed(kLabTexts, options);
    test::expect_close(str(pooling_name(pooling), " vs ", key), r.embeddings, expected.get(key), kBertF32Bound);
    test::expect_equal_i64("input_ids", r.input_ids, expected.get("input_ids"));
    test::expect_equal_i64("attention_mask", r.attention_mask, expected.get("attention_mask"));
    test::expect_close("last_hidden_state", r.last_hidden_state, expected.get("last_hidden_state"), kBertF32Bound);
  }
}

TEST(BertGolden, SplitBatchesGiveTheSameNumbers) {
  const auto embedder = TextEmbedder::load(test::data("models/bert-tiny"), test::placement());
  EmbedOptions whole, split;
  whole.pooling = split.pooling = Pooling::Lab;  // the mode most sensitive to padding
  split.max_batch_tokens = 7 * 3;                // 3 rows per slice
  const Tensor a = embedder->embed(kLabTexts, whole).embeddings, b = embedder->embed(kLabTexts, split).embeddings;
  // Slices keep the whole batch's padded length, so the lab pooling sums the same padding rows. What
  // may remain is the GEMM library's summation order for a different row count (measured 1.2e-7).
  test::expect_close("split vs whole batch", b, a, 1e-6);
  EmbedOptions split_short = split;
  split_short.pooling = Pooling::MeanNoCls;
  test::expect_close("split vs whole, mean-no-cls", embedder->embed(kLabTexts, split_short).embeddings,
                     embedder->embed(kLabTexts, EmbedOptions{}).embeddings, 1e-6);
}

TEST(BertGolden, NormalizeGivesUnitVectors) {
  const auto embedder = TextEmbedder::load(test::data("models/bert-tiny"), test::placement());
  EmbedOptions options;
  options.normalize = true;
  const Tensor e = embedder->embed(kLabTexts, options).embeddings;
  for (int64_t r = 0; r < e.dim(0); ++r) {
    double sq = 0;
    for (int64_t i = 0; i < e.dim(1); ++i) sq += std::pow(e.data<float>()[r * e.dim(1) + i], 2);
    EXPECT_NEAR(std::sqrt(sq), 1.0, 1e-6);
  }
}

TEST(BertGolden, ShardedCheckpointIsIdentical) {
  const auto expected = SafetensorsFile::open(test::data("expected/bert-tiny.safetensors"));
  const BertOutputs single = run_model(test::data("models/bert-tiny"), expected);
  const BertOutputs sharded = run_model(test::data("models/bert-tiny-sharded"), expected);
  test::expect_close("sharded last_hidden_state", sharded.last_hidden_state, single.last_hidden_state, 0.0);
  test::expect_close("sharded pooler_output", sharded.pooler_output, single.pooler_output, 0.0);
}

TEST(BertGolden, F16WeightsMatchTheirOwnReference) {
  const auto base = SafetensorsFile::open(test::data("expected/bert-tiny.safetensors"));
  const auto expected = SafetensorsFile::open(test::data("expected/bert-tiny-f16.safetensors"));
  const BertOutputs out = run_model(test::data("models/bert-tiny-f16"), base);
  test::expect_close("f16_weights_last_hidden_state", out.last_hidden_state,
                     expected.get("f16_weights_last_hidden_state"), kBertF32Bound);
  test::expect_close("f16_weights_pooler_output", out.pooler_output, expected.get("f16_weights_pooler_output"),
                     kBertF32Bound);
  const auto embedder = TextEmbedder::load(test::data("models/bert-tiny-f16"), test::placement());
  for (auto [pooling, key] : {std::pair{Pooling::Lab, "f16_weights_seed_avg_embeds"},
                              {Pooling::MeanNoCls, "f16_weights_masked_mean_no_cls"},
                              {Pooling::Mean, "f16_weights_masked_mean"}, {Pooling::Cls, "f16_weights_cls"}}) {
    EmbedOptions options;
    options.pooling = pooling;
    test::expect_close(key, embedder->embed(kLabTexts, options).embeddings, expected.get(key), kBertF32Bound);
  }
}

// ---- A BERT of another shape, checked against a plain float64 forward written from the paper/HF code.

namespace {

struct Ref {
  std::map<std::string, Tensor> w;
  const float* p(const std::string& name) const { return w.at(name).data<float>(); }
};

using Mat = std::vector<double>;  // row-major [rows, cols]

Mat ref_linear(const Mat& x, int64_t rows, int64_t in, const float* weight, const float* bias, int64_t out) {
  Mat y(static_cast<size_t>(rows * out));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < out; ++o) {
      double s = bias[o];
      for (int64_t i = 0; i < in; ++i) s += x[r * in + i] * weight[o * in + i];
      y[r * out + o] = s;
    }
  return y;
}

void ref_layer_norm(Mat& x, int64_t rows, int64_t c, const float* w, const float* b, double eps) {
  for (int64_t r = 0; r < rows; ++r) {
    double mean = 0, var = 0;
    for (int64_t i = 0; i < c; ++i) mean += x[r * c + i] / c;
    for (int64_t i = 0; i < c; ++i) var += (x[r * c + i] - mean) * (x[r * c + i] - mean) / c;
    for (int64_t i = 0; i < c; ++i) x[r * c + i] = (x[r * c + i] - mean) / std::sqrt(var + eps) * w[i] + b[i];
  }
}

// One sequence (batch row) through BertModel in float64.
Mat ref_bert(const Ref& m, const std::string& pre, const BertConfig& c, const std::vector<int64_t>& ids,
             const std::vector<int64_t>& types, const std::vector<int64_t>& mask) {
  const int64_t t = static_cast<int64_t>(ids.size()), h = c.hidden_size, heads = c.num_attention_heads, d = h / heads;
  Mat x(static_cast<size_t>(t * h));
  for (int64_t i = 0; i < t; ++i)
    for (int64_t j = 0; j < h; ++j)
      x[i * h + j] = double(m.p(pre + "embeddings.word_embeddings.weight")[ids[i] * h + j]) +
                     m.p(pre + "embeddings.token_type_embeddings.weight")[types[i] * h + j] +
                     (c.position_embedding_type == "absolute" ? m.p(pre + "embeddings.position_embeddings.weight")[i * h + j] : 0.f);
  ref_layer_norm(x, t, h, m.p(pre + "embeddings.LayerNorm.gamma"), m.p(pre + "embeddings.LayerNorm.beta"), c.layer_norm_eps);
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string L = pre + "encoder.layer." + std::to_string(l) + ".";
    auto lin = [&](const Mat& in, int64_t in_f, const std::string& name, int64_t out_f) {
      return ref_linear(in, t, in_f, m.p(L + name + ".weight"), m.p(L + name + ".bias"), out_f);
    };
    const Mat q = lin(x, h, "attention.self.query", h), k = lin(x, h, "attention.self.key", h),
              v = lin(x, h, "attention.self.value", h);
    Mat ctx(static_cast<size_t>(t * h), 0.0);
    for (int64_t hd = 0; hd < heads; ++hd)
      for (int64_t i = 0; i < t; ++i) {
        std::vector<double> s(static_cast<size_t>(t));
        double mx = -1e300;
        for (int64_t j = 0; j < t; ++j) {
          double dot = 0;
          for (int64_t e = 0; e < d; ++e) dot += q[i * h + hd * d + e] * k[j * h + hd * d + e];
          if (c.position_embedding_type != "absolute") {  // einsum("bhld,lrd->bhlr") (+ "bhrd,lrd->bhlr")
            const float* dist = m.p(L + "attention.self.distance_embedding.weight") + (i - j + c.max_position_embeddings - 1) * d;
            for (int64_t e = 0; e < d; ++e) dot += q[i * h + hd * d + e] * dist[e];
            if (c.position_embedding_type == "relative_key_query")
              for (int64_t e = 0; e < d; ++e) dot += k[j * h + hd * d + e] * dist[e];
          }
          s[j] = dot / std::sqrt(double(d)) + (mask[j] ? 0.0 : -1e30);
          mx = std::max(mx, s[j]);
        }
        double sum = 0;
        for (auto& e : s) sum += (e = std::exp(e - mx));
        for (int64_t j = 0; j < t; ++j)
          for (int64_t e = 0; e < d; ++e) ctx[i * h + hd * d + e] += s[j] / sum * v[j * h + hd * d + e];
      }
    Mat a = lin(ctx, h, "attention.output.dense", h);
    for (size_t i = 0; i < a.size(); ++i) a[i] += x[i];
    ref_layer_norm(a, t, h, m.p(L + "attention.output.LayerNorm.gamma"), m.p(L + "attention.output.LayerNorm.beta"), c.layer_norm_eps);
    Mat inter = lin(a, h, "intermediate.dense", c.intermediate_size);
    for (auto& e : inter) e = 0.5 * e * (1 + std::tanh(std::sqrt(2 / M_PI) * (e + 0.044715 * e * e * e)));  // gelu_new
    Mat o = lin(inter, c.intermediate_size, "output.dense", h);
    for (size_t i = 0; i < o.size(); ++i) o[i] += a[i];
    ref_layer_norm(o, t, h, m.p(L + "output.LayerNorm.gamma"), m.p(L + "output.LayerNorm.beta"), c.layer_norm_eps);
    x = o;
  }
  return x;
}

}  // namespace

// 3 layers, hidden 48, 6 heads, intermediate 50, 40 positions, 3 token types, gelu_new; keys under
// "bert." with TensorFlow-era LayerNorm.gamma/beta names and a cls.* head, like bert-base-uncased.
static void check_other_shape(const std::string& position_embedding_type) {
  test::TempDir dir;
  std::ofstream(dir.file("config.json")) << R"({"model_type": "bert", "vocab_size": 100, "hidden_size": 48,
    "num_hidden_layers": 3, "num_attention_heads": 6, "intermediate_size": 50, "max_position_embeddings": 40,
    "type_vocab_size": 3, "hidden_act": "gelu_new", "layer_norm_eps": 1e-7, "position_embedding_type": ")"
                                      << position_embedding_type << "\"}";
  const BertConfig c = BertConfig::from_json(JsonObject::load(dir.file("config.json")));
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.f, 0.3f);
  Ref ref;
  auto add = [&](const std::string& name, Shape shape, float mean = 0.f) {
    Tensor t = Tensor::empty(std::move(shape));
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = mean + normal(rng);
    ref.w[name] = t;
  };
  const std::string pre = "bert.";
  add(pre + "embeddings.word_embeddings.weight", {100, 48});
  add(pre + "embeddings.position_embeddings.weight", {40, 48});
  add(pre + "embeddings.token_type_embeddings.weight", {3, 48});
  add(pre + "embeddings.LayerNorm.gamma", {48}, 1.f);
  add(pre + "embeddings.LayerNorm.beta", {48});
  for (int l = 0; l < 3; ++l) {
    const std::string L = pre + "encoder.layer." + std::to_string(l) + ".";
    for (const char* n : {"attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"}) {
      add(L + n + ".weight", {48, 48});
      add(L + n + ".bias", {48});
    }
    if (position_embedding_type != "absolute") add(L + "attention.self.distance_embedding.weight", {79, 8});
    add(L + "attention.output.LayerNorm.gamma", {48}, 1.f);
    add(L + "attention.output.LayerNorm.beta", {48});
    add(L + "intermediate.dense.weight", {50, 48});
    add(L + "intermediate.dense.bias", {50});
    add(L + "output.dense.weight", {48, 50});
    add(L + "output.dense.bias", {48});
    add(L + "output.LayerNorm.gamma", {48}, 1.f);
    add(L + "output.LayerNorm.beta", {48});
  }
  add("cls.predictions.bias", {100});
  std::vector<std::pair<std::string, Tensor>> tensors(ref.w.begin(), ref.w.end());
  write_safetensors(dir.file("model.safetensors"), tensors);

  const Checkpoint checkpoint = Checkpoint::open(dir.path.string());
  WeightLoader loader(checkpoint, test::placement());
  const BertModel model(c, loader);
  EXPECT_FALSE(model.has_pooler());
  const std::vector<std::vector<int64_t>> ids = {{1, 5, 9, 99, 3, 2, 0, 0, 0}, {1, 42, 43, 44, 45, 46, 47, 48, 2}};
  const std::vector<std::vector<int64_t>> types = {{0, 0, 0, 1, 1, 2, 0, 0, 0}, {0, 0, 0, 0, 0, 1, 1, 1, 1}};
  const std::vector<std::vector<int64_t>> mask = {{1, 1, 1, 1, 1, 1, 0, 0, 0}, {1, 1, 1, 1, 1, 1, 1, 1, 1}};
  auto flat = [](const std::vector<std::vector<int64_t>>& v) {
    std::vector<int64_t> f;
    for (const auto& r : v) f.insert(f.end(), r.begin(), r.end());
    return Tensor::from_vector(f, {2, 9});
  };
  const BertOutputs out = model.forward(flat(ids), flat(types), flat(mask));
  Tensor want = Tensor::empty({2, 9, 48});
  for (int b = 0; b < 2; ++b) {
    const Mat x = ref_bert(ref, pre, c, ids[b], types[b], mask[b]);
    for (size_t i = 0; i < x.size(); ++i) want.data<float>()[b * 9 * 48 + i] = static_cast<float>(x[i]);
  }
  test::expect_close("other shape, " + position_embedding_type + ", vs float64", out.last_hidden_state, want,
                     kBertF32Bound);
  EXPECT_THROW(model.forward(Tensor::zeros({1, 41}, DType::I64), Tensor(), Tensor()), Error);  // > 40 positions
}

TEST(BertGolden, AnotherShapeWithLegacyNamesAndTaskHeads) { check_other_shape("absolute"); }
TEST(BertGolden, RelativeKeyPositions) { check_other_shape("relative_key"); }
TEST(BertGolden, RelativeKeyQueryPositions) { check_other_shape("relative_key_query"); }

TEST(BertGolden, MisShapedAndMissingWeightsAreAllReported) {
  test::TempDir dir;
  std::ofstream(dir.file("config.json")) << R"({"model_type": "bert", "vocab_size": 30522, "hidden_size": 32,
    "num_hidden_layers": 3, "num_attention_heads": 4, "intermediate_size": 37})";
  const Checkpoint checkpoint = Checkpoint::open(test::data("models/bert-tiny"));
  WeightLoader loader(checkpoint, test::placement());
  try {
    BertModel(BertConfig::from_json(JsonObject::load(dir.file("config.json"))), loader);
    ADD_FAILURE() << "a 3-layer config loaded a 2-layer checkpoint";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("missing 16 tensor(s)"), std::string::npos) << msg;
    EXPECT_NE(msg.find("encoder.layer.2.output.LayerNorm.bias"), std::string::npos) << msg;
  }
}

TEST(BertConfig, TypeErrorsAndDefaults) {
  const auto parse = [](const std::string& text) {
    return BertConfig::from_json(JsonObject(nlohmann::json::parse(text), "config.json"));
  };
  const BertConfig defaults = parse(R"({"model_type": "bert"})");
  EXPECT_EQ(defaults.hidden_size, 768);
  EXPECT_EQ(defaults.layer_norm_eps, 1e-12);
  EXPECT_EQ(defaults.hidden_act, "gelu");
  try {
    parse(R"({"hidden_size": "768"})");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("key 'hidden_size': expected an integer, found a string"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse(R"({"hidden_size": 30, "num_attention_heads": 4})"), Error);
  EXPECT_THROW(parse(R"({"hidden_act": "banana"})"), Error);
}

TEST(BertGolden, Bf16WeightsLoadExactly) {
  // The F32 checkpoint rewritten twice: as BF16, and as F32 holding the same BF16-rounded values.
  // Loading converts BF16 exactly, so both must give bit-identical outputs.
  test::TempDir dir;
  const auto source = SafetensorsFile::open(test::data("models/bert-tiny/model.safetensors"));
  std::vector<std::pair<std::string, Tensor>> bf16, rounded;
  for (const auto& t : source.tensors()) {
    const Tensor w = source.get(t.name);
    bf16.emplace_back(t.name, w.to(DType::BF16));
    rounded.emplace_back(t.name, w.to(DType::BF16).to(DType::F32));
  }
  for (const char* sub : {"bf16", "rounded"}) {
    std::filesystem::create_directory(dir.path / sub);
    std::filesystem::copy_file(test::data("models/bert-tiny/config.json"), dir.path / sub / "config.json");
    write_safetensors((dir.path / sub / "model.safetensors").string(), std::string(sub) == "bf16" ? bf16 : rounded);
  }
  const auto expected = SafetensorsFile::open(test::data("expected/bert-tiny.safetensors"));
  const BertOutputs a = run_model((dir.path / "bf16").string(), expected);
  const BertOutputs b = run_model((dir.path / "rounded").string(), expected);
  test::expect_close("bf16 file vs rounded f32 file", a.last_hidden_state, b.last_hidden_state, 0.0);
}
