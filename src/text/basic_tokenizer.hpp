// transformers' BasicTokenizer (tokenization_bert.py): clean-up of control characters, spaces around
// CJK ideographs, NFC, whitespace split, lower-casing, optional accent stripping and punctuation
// split. BERT's WordPiece and CLIP's BPE (when ftfy is absent) both start from it.
#pragma once
#include <optional>
#include <string>
#include <vector>

namespace mmx::text {

struct BasicTokenizer {
  bool do_lower_case = true;
  bool tokenize_chinese_chars = true;
  std::optional<bool> strip_accents;  // null: follows do_lower_case
  bool do_split_on_punc = true;

  std::vector<std::u32string> tokenize(const std::u32string& text) const;
};

// Python's str.split(): runs of whitespace separate, empty pieces dropped.
std::vector<std::u32string> split_whitespace(const std::u32string& text);

}  // namespace mmx::text
