// XLM-RoBERTa, MPNet and DistilBERT (issue 20) against a float64 reference of transformers' forward passes
// (tests/data/generator/make_text_encoders.py): last_hidden_state and pooler_output on a padded id batch
// with a pad id among the tokens, MPNet's relative-position buckets, and each sentence-transformers
// folder end to end (tokenizer.json → encoder → its Pooling / Normalize modules) on the lab's texts.
#include <nlohmann/json.hpp>

#include "cli/run_mmx.hpp"
#include "mmx/embed.hpp"
#include "mmx/model.hpp"
#include "mmx/safetensors.hpp"
#include "models/mpnet.hpp"
#include "test_util.hpp"

using namespace mmx;

namespace {

constexpr double kBound = 1e-5;  // tests/README.md: bert-tiny's f32 bound, the same arithmetic
const std::vector<std::string> kLabTexts = {"Cat with paint", "rock statue", "frogs on leaf", "jellyfish",
                                            "Cats don't usually", "like water", "but this one likes paint", "quite a lot"};
const char* const kModels[] = {"xlmr-tiny", "mpnet-tiny", "distilbert-tiny"};

}  // namespace

TEST(TextEncoders, LastHiddenStateAndPoolerMatchTheReference) {
  for (const char* name : kModels) {
    SCOPED_TRACE(name);
    const auto expected = SafetensorsFile::open(test::data(std::string("expected/") + name + ".safetensors"));
    const auto model = Model::load(test::data(std::string("models/") + name), test::placement());
    const TextEncoder* text = model->parts().text();
    ASSERT_NE(text, nullptr);
    const EncoderOutputs out = text->forward(expected.get("input_ids"), Tensor(), expected.get("attention_mask"), true);
    test::expect_close(std::string(name) + " last_hidden_state", out.last_hidden_state, expected.get("last_hidden_state"), kBound);
    EXPECT_EQ(out.hidden_states.size(), 3u);  // embeddings and two layers
    if (expected.find("pooler_output")) {
      ASSERT_TRUE(text->has_pooler());
      test::expect_close(std::string(name) + " pooler_output", out.pooler_output, expected.get("pooler_output"), kBound);
    } else {
      EXPECT_FALSE(text->has_pooler());
    }
  }
}

TEST(TextEncoders, SentenceTransformersFoldersEncodeAsTheReference) {
  for (const char* name : kModels) {
    SCOPED_TRACE(name);
    const auto expected = SafetensorsFile::open(test::data(std::string("expected/") + name + ".safetensors"));
    const auto embedder = TextEmbedder::load(test::data(std::string("models/") + name), test::placement());
    // The folder's tokenizer.json gives SentencePiece's ids for the lab's texts (padded to the longest).
    const BatchEncoding batch = embedder->tokenizer().encode_batch(kLabTexts, Padding::Longest);
    const Tensor ids = batch.input_ids(), want = expected.get("lab_input_ids");
    ASSERT_EQ(ids.shape(), want.shape());
    EXPECT_TRUE(std::equal(ids.data<int64_t>(), ids.data<int64_t>() + ids.numel(), want.data<int64_t>()));
    test::expect_close(std::string(name) + " encode", embedder->embed(kLabTexts, {}).embeddings, expected.get("st_embeddings"), kBound);
  }
  EXPECT_EQ(Model::load(test::data("models/distilbert-tiny"), test::placement())->default_score(), Score::Dot);
  EXPECT_EQ(Model::load(test::data("models/xlmr-tiny"), test::placement())->default_score(), Score::Cosine);
}

// MPNetEncoder.relative_position_bucket: PyTorch's float32 log arithmetic at every distance −300…300,
// the log-spaced boundaries (8, 16, 32, 64, 128 apart) included.
TEST(TextEncoders, MPNetBucketsAreTorchs) {
  const Tensor buckets = SafetensorsFile::open(test::data("expected/mpnet-tiny.safetensors")).get("buckets");
  for (int64_t d = -300; d <= 300; ++d)
    EXPECT_EQ(mpnet_relative_position_bucket(d), buckets.data<int64_t>()[d + 300]) << "distance " << d;
}

// The command line on each folder: embed with its defaults (the first lab text's row), a prompt by name
// (the same as the prompt written into the text), tokenize with the fast file.
TEST(TextEncoders, TheCommandLineRunsEachFolder) {
  using nlohmann::json;
  for (const char* name : kModels) {
    const std::string folder = test::data(std::string("models/") + name);
    const auto r = test::run({"embed", "--model", folder, "--text", "Cat with paint", "--json"});
    ASSERT_EQ(r.code, 0) << name << ": " << r.err;
    const auto row = json::parse(r.out)["embeddings"][0].get<std::vector<float>>();
    const Tensor want = SafetensorsFile::open(test::data(std::string("expected/") + name + ".safetensors")).get("st_embeddings");
    ASSERT_EQ(int64_t(row.size()), want.dim(1));
    for (size_t i = 0; i < row.size(); ++i) EXPECT_NEAR(row[i], want.data<float>()[i], kBound) << name << " " << i;
  }
  const std::string xlmr = test::data("models/xlmr-tiny");
  const auto named = test::run({"embed", "--model", xlmr, "--prompt-name", "query", "--text", "cats", "--json"});
  const auto written = test::run({"embed", "--model", xlmr, "--text", "query: cats", "--json"});
  const auto plain = test::run({"embed", "--model", xlmr, "--text", "cats", "--json"});
  ASSERT_EQ(named.code, 0) << named.err;
  EXPECT_EQ(json::parse(named.out)["embeddings"], json::parse(written.out)["embeddings"]);
  EXPECT_NE(json::parse(named.out)["embeddings"], json::parse(plain.out)["embeddings"]);
  const auto t = test::run({"tokenize", "--model", xlmr, "--text", "The <mask> sat."});
  EXPECT_EQ(t.code, 0) << t.err;
  EXPECT_NE(t.out.find("<mask>"), std::string::npos) << t.out;
}
