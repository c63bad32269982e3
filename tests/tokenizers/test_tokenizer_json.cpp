// The reader of the tokenizers library's serialization (src/text/tokenizer_json.cpp) against reference
// ids: BERT's tokenizer.json on transformers' slow BertTokenizer corpus, a SentencePiece Unigram model
// (XLM-R's layout) on SentencePiece's own ids, CLIP's tokenizer.json on the slow CLIPTokenizer corpus
// (tests/data/generator/make_tokenizer_json_cases.py says how each was made).
#include <nlohmann/json.hpp>

#include <filesystem>
#include <algorithm>
#include <functional>

#include "mmx/error.hpp"
#include "mmx/files.hpp"
#include "test_util.hpp"
#include "text/tokenizer_json.hpp"

using namespace mmx;
using nlohmann::json;

namespace {

std::unique_ptr<text::JsonTokenizer> load(const std::string& folder) { return text::JsonTokenizer::load(test::data(folder)); }

std::string shown(const std::vector<int64_t>& ids) {
  std::string s;
  for (int64_t id : ids) s += std::to_string(id) + " ";
  return s;
}

}  // namespace

TEST(TokenizerJson, BertWordPieceMatchesTheSlowCorpus) {
  const auto tok = load("tokenizers/bert-base-uncased-fast");
  const json corpus = json::parse(read_file(test::data("tokenizers/bert_cases.json")));
  int failures = 0;
  for (const auto& c : corpus["cases"]) {
    const std::string text = c["text"];
    const Encoding e = tok->encode(text, nullptr, std::nullopt);
    const Encoding t = tok->encode(text, nullptr, 512);
    const bool ok = e.input_ids == c["input_ids"].get<std::vector<int64_t>>() &&
                    e.token_type_ids == c["token_type_ids"].get<std::vector<int64_t>>() &&
                    t.input_ids == c["input_ids_truncated_512"].get<std::vector<int64_t>>() &&
                    tok->tokenize(text) == c["tokens"].get<std::vector<std::string>>();
    if (!ok && ++failures <= 5) ADD_FAILURE() << "'" << text << "': got " << shown(e.input_ids);
  }
  EXPECT_EQ(failures, 0);
  for (const auto& c : corpus["pairs"]["cases"]) {
    const std::string a = c["text"], b = c["text_pair"];
    const Encoding e = tok->encode(a, &b, std::nullopt);
    EXPECT_EQ(e.input_ids, c["input_ids"].get<std::vector<int64_t>>()) << a << " | " << b;
    EXPECT_EQ(e.token_type_ids, c["token_type_ids"].get<std::vector<int64_t>>()) << a << " | " << b;
  }
  EXPECT_EQ(tok->model_max_length(), 512);
  EXPECT_EQ(tok->pad_token_id(), 0);
  EXPECT_EQ(tok->model_input_names(), (std::vector<std::string>{"input_ids", "token_type_ids", "attention_mask"}));
}

// Precompiled (SentencePiece's nmt_nfkc char map) + Strip + Replace, Metaspace, Unigram's Viterbi with
// unknown runs fused, <mask> with lstrip, the XLM-R template: SentencePiece's ids on every case.
TEST(TokenizerJson, UnigramMatchesSentencePiece) {
  const auto tok = load("tokenizers/unigram-xlmr");
  const json corpus = json::parse(read_file(test::data("tokenizers/unigram_cases.json")));
  const json vocab = json::parse(read_file(test::data("tokenizers/unigram-xlmr/tokenizer.json")))["model"]["vocab"];
  // The exact score (f64 sums of float32 scores are exact here) and the text of a segmentation.
  auto score_and_text = [&](const std::vector<int64_t>& ids) {
    double score = 0;
    std::string text;
    for (int64_t id : ids) {
      score += vocab[size_t(id)][1].get<double>();
      text += vocab[size_t(id)][0].get<std::string>();
    }
    return std::make_pair(score, text);
  };
  int failures = 0, cases = 0, tied = 0;
  for (const auto& c : corpus["cases"]) {
    const std::string text = c["text"];
    const Encoding e = tok->encode(text, nullptr, std::nullopt);
    const auto expected = c["input_ids"].get<std::vector<int64_t>>();
    ++cases;
    if (c["tied"].get<bool>()) {
      // Several segmentations share the optimal score: SentencePiece's float32 sums pick one by rounding,
      // tokenizers (and mmx) the one whose last piece starts first. Same score, same text is the check.
      ++tied;
      EXPECT_EQ(score_and_text(e.input_ids), score_and_text(expected)) << text.substr(0, 120);
      continue;
    }
    if (e.input_ids != expected && ++failures <= 8)
      ADD_FAILURE() << "'" << text.substr(0, 120) << "':\n  expected " << shown(expected) << "\n  got      "
                    << shown(e.input_ids);
  }
  EXPECT_LE(tied, 8);  // the generator found 8; the rest must match id for id
  EXPECT_EQ(failures, 0) << "of " << cases;
  EXPECT_GT(cases, 300);
  EXPECT_EQ(tok->pad_token_id(), 1);
  EXPECT_EQ(tok->model_input_names(), (std::vector<std::string>{"input_ids", "attention_mask"}));
  // The template's tokens are marked (the server's /tokenize reports them); <mask> is the text's own.
  const Encoding m = tok->encode("The <mask> sat.", nullptr, std::nullopt);
  std::vector<int64_t> want(m.input_ids.size(), 0);
  want.front() = want.back() = 1;
  EXPECT_EQ(m.special_tokens_mask, want);
  // truncation keeps <s> and </s>
  const Encoding t = tok->encode("The cat sat on the mat and looked out of the window.", nullptr, 6);
  ASSERT_EQ(t.input_ids.size(), 6u);
  EXPECT_EQ(t.input_ids.front(), 0);
  EXPECT_EQ(t.input_ids.back(), 2);
}

// Split with a look-ahead-free Oniguruma regex (inverted, removed), ByteLevel, BPE with a suffix, the
// Roberta template: the slow CLIPTokenizer's ids on the corpus cases it does not flag as fast-differing.
TEST(TokenizerJson, ClipByteLevelBpeMatchesTheSlowCorpus) {
  json j = json::parse(read_file(test::data("tokenizers/clip-fast/tokenizer_template.json")));
  j["model"]["vocab"] = json::parse(read_file(test::data("tokenizers/clip/vocab.json")));
  json merges = json::array();
  const std::string text = read_file(test::data("tokenizers/clip/merges.txt"));
  size_t line = 0;
  for (size_t at = 0, end; at < text.size(); at = end + 1) {
    end = text.find('\n', at);
    if (end == std::string::npos) end = text.size();
    if (line++ > 0 && end > at) merges.push_back(text.substr(at, end - at));  // the first line is "#version"
  }
  j["model"]["merges"] = merges;
  test::TempDir dir;
  write_file_atomically(dir.file("tokenizer.json"), j.dump());
  const auto tok = text::JsonTokenizer::load_files(dir.file("tokenizer.json"), test::data("tokenizers/clip-fast/tokenizer_config.json"));
  const json corpus = json::parse(read_file(test::data("tokenizers/clip_cases.json")));
  int failures = 0, checked = 0;
  for (const auto& c : corpus["cases"]) {
    if (!c["may_differ_from_fast_or_ftfy"].empty()) continue;
    ++checked;
    const std::string s = c["text"];
    const Encoding e = tok->encode(s, nullptr, std::nullopt);
    if (e.input_ids != c["input_ids"].get<std::vector<int64_t>>() && ++failures <= 8)
      ADD_FAILURE() << "'" << s.substr(0, 120) << "':\n  expected " << shown(c["input_ids"]) << "\n  got      " << shown(e.input_ids);
  }
  EXPECT_EQ(failures, 0) << "of " << checked;
  EXPECT_GT(checked, 100);
  EXPECT_EQ(tok->pad_token_id(), 49407);
  EXPECT_EQ(tok->model_max_length(), 77);
}

// ByteLevel with GPT-2's regex (its \\s+(?!\\S) look-ahead), BPE with no suffix and no unknown token, the
// Roberta template, <mask> with lstrip: RobertaTokenizer's slow ids on 318 texts.
TEST(TokenizerJson, ByteLevelBpeMatchesTheSlowRobertaAlgorithm) {
  const auto tok = load("tokenizers/bpe-roberta");
  const json corpus = json::parse(read_file(test::data("tokenizers/bpe_cases.json")));
  int failures = 0, cases = 0;
  for (const auto& c : corpus["cases"]) {
    const std::string text = c["text"];
    const Encoding e = tok->encode(text, nullptr, std::nullopt);
    ++cases;
    if (e.input_ids != c["input_ids"].get<std::vector<int64_t>>() && ++failures <= 8)
      ADD_FAILURE() << "'" << text.substr(0, 120) << "':\n  expected " << shown(c["input_ids"]) << "\n  got      "
                    << shown(e.input_ids);
  }
  EXPECT_EQ(failures, 0) << "of " << cases;
  EXPECT_GT(cases, 300);
  EXPECT_EQ(tok->pad_token_id(), 1);
  const std::string b = "and a second one";
  const Encoding pair = tok->encode("first", &b, std::nullopt);  // <s> A </s></s> B </s>, all type 0
  EXPECT_EQ(std::count(pair.input_ids.begin(), pair.input_ids.end(), 2), 3);
  EXPECT_EQ(std::count(pair.token_type_ids.begin(), pair.token_type_ids.end(), 0), int64_t(pair.token_type_ids.size()));
}

// A component mmx does not implement is refused by name and place, never skipped.
TEST(TokenizerJson, UnknownComponentsAreRefusedByName) {
  const json original = json::parse(read_file(test::data("tokenizers/unigram-xlmr/tokenizer.json")));
  struct Case {
    std::string says;
    std::function<void(json&)> spoil;
  };
  const std::vector<Case> cases = {
      {"normalizer.normalizers[1] 'Frobnicate' is not implemented", [](json& j) { j["normalizer"]["normalizers"][1]["type"] = "Frobnicate"; }},
      {"pre_tokenizer 'UnicodeScripts' is not implemented", [](json& j) { j["pre_tokenizer"] = {{"type", "UnicodeScripts"}}; }},
      {"model 'WordLevel' is not implemented", [](json& j) { j["model"]["type"] = "WordLevel"; }},
      {"post_processor 'Frob' is not implemented", [](json& j) { j["post_processor"] = {{"type", "Frob"}}; }},
      {"normalizer.normalizers[2].pattern regex '(' does not compile", [](json& j) { j["normalizer"]["normalizers"][2]["pattern"]["Regex"] = "("; }},
      {"post_processor.single[0] names special token '<x>'", [](json& j) { j["post_processor"]["single"][0]["SpecialToken"]["id"] = "<x>"; }},
      {"model.vocab[5] is not [piece, score]", [](json& j) { j["model"]["vocab"][5] = "oops"; }},
      {"precompiled_charsmap declares a trie", [](json& j) { j["normalizer"]["normalizers"][0]["precompiled_charsmap"] = "/////w=="; }},
  };
  test::TempDir dir;
  for (const Case& c : cases) {
    json j = original;
    c.spoil(j);
    const std::string path = dir.file("t" + std::to_string(&c - cases.data()) + ".json");
    write_file_atomically(path, j.dump());
    try {
      text::JsonTokenizer::load_files(path, "");
      ADD_FAILURE() << c.says << ": accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(c.says), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
  }
}
