// sentence-transformers folders (issue 20) against sentence-transformers' own Pooling, Dense and Normalize
// modules run on transformers' hidden states (tests/data/generator/make_sentence_transformers.py): every
// Pooling mode, the root layout with mean + Normalize, the 0_Transformer layout with three concatenated
// poolings, a Dense layer and Normalize; prompts, include_prompt, max_seq_length and do_lower_case as
// SentenceTransformer.encode applies them; bad folders named.
#include <cmath>
#include <filesystem>
#include <functional>

#include <nlohmann/json.hpp>

#include "cli/run_mmx.hpp"
#include "io/sentence_transformers_folder.hpp"
#include "mmx/embed.hpp"
#include "mmx/files.hpp"
#include "mmx/model.hpp"
#include "mmx/safetensors.hpp"
#include "test_util.hpp"

using namespace mmx;
namespace fs = std::filesystem;

namespace {

const std::vector<std::string> kLabTexts = {"Cat with paint", "rock statue", "frogs on leaf", "jellyfish",
                                            "Cats don't usually", "like water", "but this one likes paint", "quite a lot"};
constexpr double kBound = 1e-5;  // tests/README.md: inherits bert-tiny's last_hidden_state bound

Tensor embed(const std::string& model, const EmbedOptions& options, const std::vector<std::string>& texts = kLabTexts) {
  return TextEmbedder::load(test::data("models/" + model), test::placement())->embed(texts, options).embeddings;
}

// A copy of a fixture folder (links resolved) for a bad-input case.
std::string copy_of(const test::TempDir& dir, const std::string& model) {
  const std::string copy = dir.file(model + "-copy");
  fs::remove_all(copy);
  fs::copy(test::data("models/" + model), copy, fs::copy_options::recursive | fs::copy_options::copy_symlinks);
  for (const auto& e : fs::recursive_directory_iterator(copy))  // the links point at ../bert-tiny: make them files
    if (e.is_symlink()) {
      const fs::path target = fs::canonical(test::data("models/" + model) / fs::relative(e.path(), copy));
      fs::remove(e.path());
      fs::copy_file(target, e.path());
    }
  return copy;
}

// F.normalize(x, p=2, dim=1), in float64, for references built from the fixtures.
void l2_normalize_rows(Tensor& t) {
  float* p = t.data<float>();
  const int64_t d = t.dim(1);
  for (int64_t r = 0; r < t.dim(0); ++r) {
    double n = 0;
    for (int64_t i = 0; i < d; ++i) n += double(p[r * d + i]) * p[r * d + i];
    for (int64_t i = 0; i < d; ++i) p[r * d + i] = float(p[r * d + i] / std::max(std::sqrt(n), 1e-12));
  }
}

}  // namespace

TEST(SentenceTransformers, EveryPoolingModeIsThePoolingModules) {
  const auto expected = SafetensorsFile::open(test::data("expected/st-bert-tiny.safetensors"));
  const std::vector<std::pair<std::string, Pooling>> modes = {
      {"cls", Pooling::Cls},   {"max", Pooling::Max}, {"mean", Pooling::Mean}, {"mean_sqrt_len_tokens", Pooling::MeanSqrtLen},
      {"weightedmean", Pooling::WeightedMean}, {"lasttoken", Pooling::LastToken}};
  for (const auto& [name, pooling] : modes) {
    EmbedOptions o;
    o.pooling = pooling;
    // On plain bert-tiny: the pooling alone, as Pooling(32, pooling_mode=name) computes it.
    test::expect_close("Pooling " + name, embed("bert-tiny", o), expected.get("pooling_" + name), kBound);
    // Length-sorted passes pad differently: no mode may see the padding (weightedmean weighs by position).
    o.max_batch_tokens = 12;
    test::expect_close("Pooling " + name + " in passes", embed("bert-tiny", o), expected.get("pooling_" + name), kBound);
  }
}

TEST(SentenceTransformers, FoldersEncodeAsSentenceTransformerWithNoFlags) {
  const auto expected = SafetensorsFile::open(test::data("expected/st-bert-tiny.safetensors"));
  test::expect_close("st-bert-tiny (mean, Normalize)", embed("st-bert-tiny", {}), expected.get("st_bert_tiny"), kBound);
  test::expect_close("st-bert-tiny-dense (cls+max+mean_sqrt_len, Dense, Normalize)", embed("st-bert-tiny-dense", {}),
                     expected.get("st_bert_tiny_dense"), kBound);
  const auto model = Model::load(test::data("models/st-bert-tiny-dense"), test::placement());
  EXPECT_EQ(model->default_text_pooling(), Pooling::Modules);
  // Its Transformer folder loaded directly, while the folder is held, is the plain BERT, not the modules.
  const auto plain = Model::load(test::data("models/st-bert-tiny-dense/0_Transformer"), test::placement());
  EXPECT_EQ(plain->sentence_transformers(), nullptr);
  EXPECT_EQ(plain->default_text_pooling(), Pooling::MeanNoCls);
  EXPECT_EQ(model->default_score(), Score::Dot);  // similarity_fn_name "dot"
  EXPECT_EQ(Model::load(test::data("models/st-bert-tiny"), test::placement())->default_score(), Score::Cosine);
  // --pooling takes the Pooling module's place; Normalize still follows.
  EmbedOptions cls;
  cls.pooling = Pooling::Cls;
  Tensor want = expected.get("pooling_cls").clone();
  l2_normalize_rows(want);
  test::expect_close("st-bert-tiny --pooling cls (then Normalize)", embed("st-bert-tiny", cls), want, kBound);
  // The pooler output (transformers' pooler_output) takes the Pooling module's place the same way.
  const auto bert = SafetensorsFile::open(test::data("expected/bert-tiny.safetensors"));
  Tensor pooler = bert.get("pooler_output").clone();
  l2_normalize_rows(pooler);
  EmbedOptions pooled;
  pooled.pooling = Pooling::Pooler;
  test::expect_close("st-bert-tiny --pooling pooler (then Normalize)", embed("st-bert-tiny", pooled), pooler, kBound);
  // A single pooling cannot feed the 96-wide Dense layer: said, not computed.
  try {
    embed("st-bert-tiny-dense", cls);
    ADD_FAILURE() << "a 32-wide pooling went into a 96-wide Dense";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("takes 96"), std::string::npos) << e.what();
  }
}

TEST(SentenceTransformers, PromptsStripLowercaseAndTruncateAsEncodeDoes) {
  const auto embedder = TextEmbedder::load(test::data("models/st-bert-tiny"), test::placement());
  // encode(texts, prompt_name="query") is encode(["query: " + t]) for a Pooling that includes the prompt.
  EmbedOptions query;
  query.prompt_name = "query";
  std::vector<std::string> prefixed;
  for (const auto& t : kLabTexts) prefixed.push_back("query: " + t);
  const Tensor by_name = embedder->embed(kLabTexts, query).embeddings;
  test::expect_close("prompt_name query = the prefixed texts", by_name, embedder->embed(prefixed, {}).embeddings, 0);
  EmbedOptions given;
  given.prompt = "query: ";
  test::expect_close("prompt 'query: ' = prompt_name query", embedder->embed(kLabTexts, given).embeddings, by_name, 0);
  EmbedOptions unknown;
  unknown.prompt_name = "document";
  try {
    embedder->embed(kLabTexts, unknown);
    ADD_FAILURE() << "an unknown prompt name was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Usage);
    EXPECT_NE(std::string(e.what()).find("'document' is not among the model's prompts (passage, query"), std::string::npos) << e.what();
  }
  // Transformer.tokenize strips each text: surrounding whitespace changes nothing.
  test::expect_close("stripped", embedder->embed({"  \t Cat with paint \n"}, {}).embeddings,
                     embedder->embed({"Cat with paint"}, {}).embeddings, 0);
  EXPECT_EQ(embedder->prepare("  Ünïcode TEXT ", {}), "Ünïcode TEXT");  // do_lower_case false here
  // st-bert-tiny-dense: do_lower_case (Python's str.lower), max_seq_length 64, include_prompt false.
  const auto dense = TextEmbedder::load(test::data("models/st-bert-tiny-dense"), test::placement());
  EXPECT_EQ(dense->prepare(" ÜNÏCODE İ ", {}), "ünïcode i̇");
  EXPECT_EQ(dense->max_length(), 64);
  EXPECT_EQ(embedder->max_length(), 128);
  const std::string long_text = [] {
    std::string s;
    for (int i = 0; i < 100; ++i) s += "paint ";
    return s;
  }();
  EmbedOptions tokens;
  tokens.token_embeddings = true;
  EXPECT_EQ(dense->embed({long_text}, tokens).input_ids.dim(1), 64);
  // include_prompt false: the prompt's tokens ([CLS] and its words, not [SEP]) are left out of the pooling,
  // so the prompted embedding is the Pooling of the prompted text's states with those positions masked.
  EmbedOptions dense_query;
  dense_query.prompt_name = "query";
  const std::string prompt = "Represent this sentence for searching relevant passages: ";
  const int64_t prompt_tokens = dense->prompt_tokens(dense_query);
  EXPECT_EQ(prompt_tokens, int64_t(dense->tokenizer().encode("represent this sentence for searching relevant passages:").input_ids.size()) - 1);
  const Tensor with_prompt = dense->embed({"Cat with paint"}, dense_query).embeddings;
  const Tensor without = dense->embed({prompt + "Cat with paint"}, {}).embeddings;
  const test::Diff d = test::diff(with_prompt, without);
  EXPECT_GT(d.max_abs, 1e-3) << "include_prompt false made no difference";
  // The same from the prompted text's token states, pooled by hand as Pooling.forward does with
  // attention_mask[:, :prompt_length] = 0 (cls still takes position 0), then Dense (tanh) and Normalize.
  EmbedOptions states = dense_query;
  states.token_embeddings = true;
  const EmbedResult r = dense->embed({"Cat with paint"}, states);
  test::expect_close("token_embeddings run = plain run", r.embeddings, with_prompt, 0);
  const int64_t len = r.last_hidden_state.dim(1);
  const float* h = r.last_hidden_state.data<float>();
  std::vector<float> pooled(96, -1e9f);
  std::vector<double> sum(32, 0.0);
  for (int64_t i = 0; i < 32; ++i) pooled[size_t(i)] = h[i];  // cls
  for (int64_t t = prompt_tokens; t < len; ++t)
    for (int64_t i = 0; i < 32; ++i) {
      pooled[size_t(32 + i)] = std::max(pooled[size_t(32 + i)], h[t * 32 + i]);
      sum[size_t(i)] += h[t * 32 + i];
    }
  for (int64_t i = 0; i < 32; ++i) pooled[size_t(64 + i)] = float(sum[size_t(i)] / std::sqrt(double(len - prompt_tokens)));
  const auto weights = SafetensorsFile::open(test::data("models/st-bert-tiny-dense/2_Dense/model.safetensors"));
  const Tensor w = weights.get("linear.weight"), b = weights.get("linear.bias");
  Tensor by_hand = Tensor::empty({1, 16});
  double norm = 0;
  for (int64_t o = 0; o < 16; ++o) {
    double y = b.data<float>()[o];
    for (int64_t i = 0; i < 96; ++i) y += double(w.data<float>()[o * 96 + i]) * pooled[size_t(i)];
    by_hand.data<float>()[o] = float(std::tanh(y));
    norm += std::tanh(y) * std::tanh(y);
  }
  for (int64_t o = 0; o < 16; ++o) by_hand.data<float>()[o] = float(by_hand.data<float>()[o] / std::sqrt(norm));
  test::expect_close("include_prompt false, by hand", with_prompt, by_hand, kBound);
}

TEST(SentenceTransformers, TheCommandLineAndBadFolders) {
  const auto expected = SafetensorsFile::open(test::data("expected/st-bert-tiny.safetensors"));
  test::TempDir dir;
  const std::string out = dir.file("st.safetensors");
  std::vector<std::string> args = {"embed", "--model", test::data("models/st-bert-tiny-dense"), "--output", out};
  for (const auto& t : kLabTexts) args.insert(args.end(), {"--text", t});
  const test::Result r = test::run(args);
  ASSERT_EQ(r.code, 0) << r.err;
  test::expect_close("mmx embed st-bert-tiny-dense", SafetensorsFile::open(out).get("embeddings"),
                     expected.get("st_bert_tiny_dense"), kBound);
  EXPECT_EQ(SafetensorsFile::open(out).metadata().at("pooling"), "modules");
  // Asymmetric search (e5's query/passage): each side with its prompt = the prefixed texts without.
  const std::string st = test::data("models/st-bert-tiny");
  const test::Result named = test::run({"similarity", "--model", st, "--row-text", "how do cats paint", "--col-text", "Cat with paint",
                                        "--col-text", "rock statue", "--row-prompt-name", "query", "--col-prompt-name", "passage", "--json"});
  const test::Result prefixed = test::run({"similarity", "--model", st, "--row-text", "query: how do cats paint", "--col-text",
                                           "passage: Cat with paint", "--col-text", "passage: rock statue", "--json"});
  ASSERT_EQ(named.code, 0) << named.err;
  ASSERT_EQ(prefixed.code, 0) << prefixed.err;
  // (the prefixed texts form one batch, the prompted sides two: within float32 rounding of the GEMM's blocking)
  const auto a = nlohmann::json::parse(named.out)["matrix"], b = nlohmann::json::parse(prefixed.out)["matrix"];
  ASSERT_EQ(a.size(), 1u);
  ASSERT_EQ(a[0].size(), 2u);
  for (size_t j = 0; j < 2; ++j) EXPECT_NEAR(a[0][j].get<double>(), b[0][j].get<double>(), 1e-6) << j;
  EXPECT_EQ(nlohmann::json::parse(named.out)["score"], "cosine");
  const test::Result plain = test::run({"embed", "--model", test::data("models/bert-tiny"), "--text", "a", "--prompt-name", "query"});
  EXPECT_EQ(plain.code, 2);
  EXPECT_NE(plain.err.find("--prompt-name applies to sentence-transformers folders"), std::string::npos) << plain.err;

  struct Case {
    std::string what, says;
    std::function<void(const std::string&)> spoil;
  };
  auto edit_json = [](const std::string& path, const std::function<void(nlohmann::json&)>& f) {
    nlohmann::json j = nlohmann::json::parse(read_file(path));
    f(j);
    write_file_atomically(path, j.dump());
  };
  const std::vector<Case> cases = {
      {"an unknown module", "module 2 is a 'sentence_transformers.models.LayerNorm', which mmx does not implement",
       [&](const std::string& m) { edit_json(m + "/modules.json", [](auto& j) { j[2]["type"] = "sentence_transformers.models.LayerNorm"; }); }},
      {"a missing Dense folder", "module 2 names folder '2_Dense', which is missing",
       [&](const std::string& m) { fs::remove_all(m + "/2_Dense"); }},
      {"a Dense of the wrong shape", "2_Dense/config.json: key 'in_features' is 64, but the module before it gives 96 values",
       [&](const std::string& m) { edit_json(m + "/2_Dense/config.json", [](auto& j) { j["in_features"] = 64; }); }},
      {"Dense weights of another width", "tensor 'linear.weight': shape [16, 96], config.json implies [8, 96]",
       [&](const std::string& m) { edit_json(m + "/2_Dense/config.json", [](auto& j) { j["out_features"] = 8; }); }},
      {"an unknown activation", "key 'activation_function' is 'torch.nn.modules.activation.Mish'",
       [&](const std::string& m) { edit_json(m + "/2_Dense/config.json", [](auto& j) { j["activation_function"] = "torch.nn.modules.activation.Mish"; }); }},
      {"an unknown pooling mode", "key 'pooling_mode' is 'median'",
       [&](const std::string& m) { edit_json(m + "/1_Pooling/config.json", [](auto& j) { j["pooling_mode"] = "median"; }); }},
      {"a default prompt that is not a prompt", "key 'default_prompt_name' is 'search'",
       [&](const std::string& m) { edit_json(m + "/config_sentence_transformers.json", [](auto& j) { j["default_prompt_name"] = "search"; }); }},
      {"a module path outside the folder", "module path '../bert-tiny' is not a folder inside",
       [&](const std::string& m) { edit_json(m + "/modules.json", [](auto& j) { j[0]["path"] = "../bert-tiny"; }); }},
  };
  for (const Case& c : cases) {
    const std::string m = copy_of(dir, "st-bert-tiny-dense");
    c.spoil(m);
    const test::Result bad = test::run({"embed", "--model", m, "--text", "a cat"});
    EXPECT_EQ(bad.code, 1) << c.what << "\n" << bad.err;
    EXPECT_NE(bad.err.find(c.says), std::string::npos) << c.what << ": " << bad.err;
    EXPECT_EQ(bad.out, "") << c.what;
  }
}

// The Hub's own files of sentence-transformers/all-MiniLM-L6-v2 (revision 1110a243, byte-identical:
// tests/data/README.md): a Pooling config of four keys (no weightedmean, lasttoken or include_prompt),
// a Normalize module without a folder, max_seq_length 256.
TEST(SentenceTransformers, TheRealAllMiniLmL6V2FilesRead) {
  const std::string root = test::data("real-configs/all-MiniLM-L6-v2");
  ASSERT_TRUE(SentenceTransformersFolder::present(root));
  const auto st = SentenceTransformersFolder::read(root);
  EXPECT_EQ(st->transformer_folder, root);
  EXPECT_EQ(st->poolings, std::vector<Pooling>{Pooling::Mean});
  EXPECT_TRUE(st->include_prompt);
  EXPECT_EQ(st->word_embedding_dimension, 384);
  ASSERT_EQ(st->steps.size(), 1u);
  EXPECT_EQ(st->steps[0].kind, SentenceTransformersFolder::Step::Normalize);
  EXPECT_EQ(st->max_seq_length, std::optional<int64_t>(256));
  EXPECT_FALSE(st->do_lower_case);
  EXPECT_EQ(st->similarity_fn_name, "cosine");  // no config_sentence_transformers.json: SentenceTransformer's default
  EXPECT_EQ(st->output_dimension(384), 384);
}

// Many Hub folders of these models ship tokenizer.json; one that holds it instead of vocab.txt embeds
// the same numbers (the tokenizer gives the same ids: tokenizers/test_wordpiece.cpp).
TEST(SentenceTransformers, AFolderWithOnlyTokenizerJsonEmbedsTheSame) {
  test::TempDir dir;
  const std::string copy = copy_of(dir, "st-bert-tiny");
  fs::remove(copy + "/vocab.txt");
  fs::copy_file(test::data("tokenizers/bert-base-uncased-fast/tokenizer.json"), copy + "/tokenizer.json");
  test::expect_close("tokenizer.json folder = vocab.txt folder",
                     TextEmbedder::load(copy, test::placement())->embed(kLabTexts, {}).embeddings, embed("st-bert-tiny", {}), 0);
}
