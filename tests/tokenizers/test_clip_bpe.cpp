// CLIPTokenizer parity on the 152-case corpus made by transformers' slow CLIPTokenizer without ftfy
// (tests/data/tokenizers/clip_cases.json): tokens, ids, the SDXL max_length call, SDXL's tokenizer_2
// (pad "!"), and the lab batches.
#include <nlohmann/json.hpp>
#include <thread>

#include "mmx/files.hpp"
#include "test_util.hpp"
#include "text/clip_bpe.hpp"

using namespace mmx;
using nlohmann::json;

namespace {

const json& corpus() {
  static const json cases = json::parse(read_file(test::data("tokenizers/clip_cases.json")));
  return cases;
}
const text::ClipTokenizer& clip() {
  static const auto tok = text::ClipTokenizer::load(test::data("tokenizers/clip"));
  return *tok;
}
const text::ClipTokenizer& sdxl_tokenizer_2() {
  static const auto tok = text::ClipTokenizer::load(test::data("tokenizers/sdxl-tokenizer_2"));
  return *tok;
}

std::vector<int64_t> padded_77(const text::ClipTokenizer& t, const std::string& text, std::vector<int64_t>* mask = nullptr) {
  const BatchEncoding b = t.encode_batch({text}, Padding::MaxLength, 77);
  if (mask) *mask = b.rows[0].attention_mask;
  return b.rows[0].input_ids;
}

int check_corpus(bool verbose) {
  int failures = 0;
  for (const auto& c : corpus()["cases"]) {
    const std::string text = c["text"];
    std::vector<int64_t> mask;
    const auto tokens = clip().tokenize(text);
    const Encoding full = clip().encode(text, nullptr, std::nullopt);
    const auto ids77 = padded_77(clip(), text, &mask);
    const auto ids77_2 = padded_77(sdxl_tokenizer_2(), text);
    const bool ok = tokens == c["tokens"].get<std::vector<std::string>>() &&
                    full.input_ids == c["input_ids"].get<std::vector<int64_t>>() &&
                    ids77 == c["max_length_77_input_ids"].get<std::vector<int64_t>>() &&
                    mask == c["max_length_77_attention_mask"].get<std::vector<int64_t>>() &&
                    ids77_2 == c["sdxl_tokenizer_2_max_length_77_input_ids"].get<std::vector<int64_t>>();
    if (!ok) {
      ++failures;
      if (verbose) {
        std::string got, want;
        for (const auto& t : tokens) got += t + " ";
        for (const auto& t : c["tokens"]) want += t.get<std::string>() + " ";
        ADD_FAILURE() << "text: " << json(text).dump() << "\n expected: " << want << "\n      got: " << got;
      }
    }
  }
  return failures;
}

}  // namespace

TEST(ClipBpe, EveryCorpusCaseMatchesTransformers) {
  ASSERT_EQ(corpus()["cases"].size(), 152u);
  EXPECT_EQ(check_corpus(true), 0);
}

TEST(ClipBpe, CorpusOnFourThreadsAtOnce) {
  std::vector<int> failures(4, -1);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) threads.emplace_back([&, t] { failures[t] = check_corpus(false); });
  for (auto& t : threads) t.join();
  for (int f : failures) EXPECT_EQ(f, 0);
}

TEST(ClipBpe, LabBatches) {
  const auto texts = corpus()["seed_batch"]["texts"].get<std::vector<std::string>>();
  const std::pair<const text::ClipTokenizer*, const char*> calls[] = {
      {&clip(), "seed_batch"}, {&clip(), "seed_batch_max_length_77"}, {&sdxl_tokenizer_2(), "seed_batch_sdxl_tokenizer_2"}};
  for (auto [tokenizer, key] : calls) {
    const auto& want = corpus()[key];
    const bool longest = std::string(key) == "seed_batch";
    const BatchEncoding b = tokenizer->encode_batch(texts, longest ? Padding::Longest : Padding::MaxLength,
                                                    longest ? std::nullopt : std::optional<int64_t>(77));
    for (size_t i = 0; i < texts.size(); ++i) {
      EXPECT_EQ(b.rows[i].input_ids, want["input_ids"][i].get<std::vector<int64_t>>()) << key << " " << texts[i];
      if (want.contains("attention_mask")) {
        EXPECT_EQ(b.rows[i].attention_mask, want["attention_mask"][i].get<std::vector<int64_t>>()) << key;
      }
    }
  }
}
