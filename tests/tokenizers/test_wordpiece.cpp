// BertTokenizer parity on the 152-case corpus made by transformers' slow BertTokenizer
// (tests/data/tokenizers/bert_cases.json): tokens, ids, type ids, masks, truncation, pairs, the lab batch.
#include <nlohmann/json.hpp>
#include <thread>
#include <filesystem>
#include <functional>

#include "mmx/files.hpp"
#include "test_util.hpp"
#include "text/wordpiece.hpp"

using namespace mmx;
using nlohmann::json;

namespace {

const json& corpus() {
  static const json cases = json::parse(read_file(test::data("tokenizers/bert_cases.json")));
  return cases;
}

const text::BertTokenizer& slow_tokenizer() {
  static const auto tok = text::BertTokenizer::load(test::data("tokenizers/bert-base-uncased"));
  return *tok;
}

std::string pieces(const std::vector<int64_t>& ids) {
  std::string s;
  for (int64_t id : ids) s += slow_tokenizer().id_to_token(id) + " ";
  return s;
}

// Returns the number of mismatching cases; prints each with expected and got ids and pieces.
int check_corpus(bool verbose, const Tokenizer& tokenizer) {
  int failures = 0;
  for (const auto& c : corpus()["cases"]) {
    const std::string text = c["text"];
    const auto tokens = tokenizer.tokenize(text);
    const Encoding full = tokenizer.encode(text, nullptr, std::nullopt);
    const Encoding truncated = tokenizer.encode(text, nullptr, 512);
    const bool ok = tokens == c["tokens"].get<std::vector<std::string>>() &&
                    full.input_ids == c["input_ids"].get<std::vector<int64_t>>() &&
                    full.token_type_ids == c["token_type_ids"].get<std::vector<int64_t>>() &&
                    full.attention_mask == c["attention_mask"].get<std::vector<int64_t>>() &&
                    truncated.input_ids == c["input_ids_truncated_512"].get<std::vector<int64_t>>();
    if (!ok) {
      ++failures;
      if (verbose)
        ADD_FAILURE() << "text: " << json(text).dump() << "\n expected: " << pieces(c["input_ids"].get<std::vector<int64_t>>())
                      << "\n      got: " << pieces(full.input_ids);
    }
  }
  return failures;
}

int check_corpus(bool verbose) { return check_corpus(verbose, slow_tokenizer()); }
const text::BertTokenizer& tokenizer() { return slow_tokenizer(); }

}  // namespace

TEST(WordPiece, EveryCorpusCaseMatchesTransformers) {
  ASSERT_EQ(corpus()["cases"].size(), 152u);
  EXPECT_EQ(check_corpus(true), 0);
}

TEST(WordPiece, CorpusOnFourThreadsAtOnce) {  // no shared mutable state in the tokenizer
  std::vector<int> failures(4, -1);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) threads.emplace_back([&, t] { failures[t] = check_corpus(false); });
  for (auto& t : threads) t.join();
  for (int f : failures) EXPECT_EQ(f, 0);
}

TEST(WordPiece, SentencePairsAndLongestFirstTruncation) {
  for (const auto& c : corpus()["pairs"]["cases"]) {
    const std::string a = c["text"], b = c["text_pair"];
    const Encoding e = tokenizer().encode(a, &b, std::nullopt);
    EXPECT_EQ(e.input_ids, c["input_ids"].get<std::vector<int64_t>>()) << a << " | " << b;
    EXPECT_EQ(e.token_type_ids, c["token_type_ids"].get<std::vector<int64_t>>()) << a << " | " << b;
    const Encoding t = tokenizer().encode(a, &b, 16);
    EXPECT_EQ(t.input_ids, c["longest_first_16_input_ids"].get<std::vector<int64_t>>()) << a << " | " << b;
    EXPECT_EQ(t.token_type_ids, c["longest_first_16_token_type_ids"].get<std::vector<int64_t>>()) << a << " | " << b;
  }
}

TEST(WordPiece, LabBatchIsOnePaddedBatch) {
  const auto& seed = corpus()["seed_batch"];
  const BatchEncoding batch = tokenizer().encode_batch(seed["texts"].get<std::vector<std::string>>(), Padding::Longest);
  ASSERT_EQ(batch.length(), 7);
  for (size_t i = 0; i < batch.rows.size(); ++i) {
    EXPECT_EQ(batch.rows[i].input_ids, seed["input_ids"][i].get<std::vector<int64_t>>());
    EXPECT_EQ(batch.rows[i].attention_mask, seed["attention_mask"][i].get<std::vector<int64_t>>());
    EXPECT_EQ(batch.rows[i].token_type_ids, seed["token_type_ids"][i].get<std::vector<int64_t>>());
  }
}

TEST(WordPiece, MaxLengthPaddingAndInvalidUtf8) {
  const BatchEncoding batch = tokenizer().encode_batch({"Cat with paint"}, Padding::MaxLength, 10);
  EXPECT_EQ(batch.rows[0].input_ids.size(), 10u);
  EXPECT_EQ(batch.rows[0].attention_mask[9], 0);
  try {
    tokenizer().encode_batch({"ok", std::string("bad \xff byte")}, Padding::Longest);
    ADD_FAILURE() << "accepted invalid UTF-8";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("text 2"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("invalid UTF-8 at byte 4"), std::string::npos) << e.what();
  }
}

TEST(WordPiece, LongWordsBecomeUnk) {
  EXPECT_EQ(tokenizer().tokenize(std::string(101, 'a')), std::vector<std::string>{"[UNK]"});
  EXPECT_NE(tokenizer().tokenize(std::string(100, 'a')), std::vector<std::string>{"[UNK]"});
}

// A folder holding tokenizer.json (the tokenizers library's format, as BertConverter writes
// bert-base-uncased's: tests/data/generator/make_bert_tokenizer_json.py) is read from it, as AutoTokenizer
// reads it, and gives the slow tokenizer's ids on the whole corpus and its pairs. Where a folder holds both
// files the fast one wins: a token only tokenizer.json adds is split out, and tokenizer_config.json's
// do_lower_case rewrites the BertNormalizer as BertTokenizerFast.__init__ does.
TEST(WordPiece, TokenizerJsonMatchesTheSlowCorpusAndWinsOverVocabTxt) {
  const auto fast = Tokenizer::load(test::data("tokenizers/bert-base-uncased-fast"));
  EXPECT_EQ(check_corpus(true, *fast), 0);
  EXPECT_EQ(fast->model_max_length(), 512);
  for (const auto& c : corpus()["pairs"]["cases"]) {
    const std::string a = c["text"], b = c["text_pair"];
    const Encoding e = fast->encode(a, &b);
    EXPECT_EQ(e.input_ids, c["input_ids"].get<std::vector<int64_t>>()) << a << " | " << b;
    EXPECT_EQ(e.token_type_ids, c["token_type_ids"].get<std::vector<int64_t>>()) << a << " | " << b;
  }
  test::TempDir dir;
  json j = json::parse(read_file(test::data("tokenizers/bert-base-uncased-fast/tokenizer.json")));
  j["added_tokens"].push_back({{"id", 30522}, {"content", "<extra>"}, {"single_word", false}, {"lstrip", false},
                               {"rstrip", false}, {"normalized", false}, {"special", false}});
  const std::string both = dir.file("both");
  std::filesystem::create_directories(both);
  std::filesystem::copy_file(test::data("tokenizers/bert-base-uncased/vocab.txt"), both + "/vocab.txt");
  write_file_atomically(both + "/tokenizer.json", j.dump());
  write_file_atomically(both + "/tokenizer_config.json", R"({"tokenizer_class": "BertTokenizer", "do_lower_case": false})");
  const auto tok = Tokenizer::load(both);
  const auto pieces = tok->tokenize("Hello <extra> world");
  EXPECT_EQ(pieces[1], "<extra>") << "the fast file's added token";
  EXPECT_EQ(tok->encode("Hello <extra> world").input_ids[2], 30522);
  EXPECT_NE(pieces[0], "hello") << "do_lower_case false keeps the case";
  EXPECT_EQ(Tokenizer::load(test::data("tokenizers/bert-base-uncased-fast"))->tokenize("Hello")[0], "hello");
}
