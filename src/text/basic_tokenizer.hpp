// transformers' BasicTokenizer (tokenization_bert.py): clean-up of control characters, spaces around
// CJK ideographs, NFC, whitespace split, lower-casing, optional accent stripping and punctuation
// split. BERT's WordPiece and CLIP's BPE (when ftfy is absent) both start from it.
#pragma once
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <cstdint>
#include <vector>

namespace mmx::text {

struct BasicTokenizer {
  bool do_lower_case = true;
  bool tokenize_chinese_chars = true;
  std::optional<bool> strip_accents;  // null: follows do_lower_case
  bool do_split_on_punc = true;

  std::vector<std::u32string> tokenize(const std::u32string& text) const;
};

// PreTrainedTokenizer.tokenize's first step: added/special tokens (longest first) are cut out of the
// text before any normalisation; `on_text` gets the runs between them, `on_special` each token.
void split_on_special_tokens(const std::u32string& text, const std::vector<std::u32string>& specials,
                             const std::function<void(const std::u32string&)>& on_text,
                             const std::function<void(const std::u32string&)>& on_special);

// transformers' truncate_sequences with TruncationStrategy.LONGEST_FIRST: cuts ids so that they, plus
// `specials` added tokens, fit in max_length. One sequence loses its tail (and stays whole, with a
// warning, when the specials alone exceed the limit); a pair loses one token at a time from the
// longer sequence, the second on ties.
void truncate_longest_first(std::vector<int64_t>& a, std::vector<int64_t>* b, int64_t specials, int64_t max_length);

// A token as tokenizer files write it: "…" or an AddedToken dict {"content": "…"}; "" otherwise.
std::string token_content(const nlohmann::json& value);
// Added tokens extend the vocabulary: an id at or past (vocabulary + added tokens) belongs to no token a
// tokenizer could hold, and would size its id table after it (10^8 → gigabytes); refused naming the folder.
void check_added_ids(const std::string& folder, size_t vocab_size,
                     const std::vector<std::pair<std::string, int64_t>>& added);

// Python's str.split(): runs of whitespace separate, empty pieces dropped.
std::vector<std::u32string> split_whitespace(const std::u32string& text);

}  // namespace mmx::text
