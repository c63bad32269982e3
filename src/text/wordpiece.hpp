// BertTokenizer (transformers, slow): BasicTokenizer (clean-up, CJK split, lower-case, accent strip,
// punctuation split) then greedy longest-match WordPiece, with [CLS]/[SEP] templates.
// Follows transformers 4.45 tokenization_bert.py and tokenization_utils.py.
#pragma once
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "mmx/tokenizer.hpp"

namespace mmx::text {

struct BertTokenizerConfig {
  bool do_lower_case = true;
  bool do_basic_tokenize = true;
  bool tokenize_chinese_chars = true;
  std::optional<bool> strip_accents;  // null: follow do_lower_case
  int64_t model_max_length = 512;     // tokenizer_config.json; transformers' "very large" when absent
  std::string unk_token = "[UNK]", sep_token = "[SEP]", pad_token = "[PAD]", cls_token = "[CLS]",
              mask_token = "[MASK]";
};

class BertTokenizer : public Tokenizer {
 public:
  // Reads vocab.txt, tokenizer_config.json and special_tokens_map.json (the last two optional).
  static std::unique_ptr<BertTokenizer> load(const std::string& folder);
  BertTokenizer(std::vector<std::string> vocab, BertTokenizerConfig config,
                std::vector<std::pair<std::string, int64_t>> added_tokens = {});

  std::vector<std::string> tokenize(const std::string& text) const override;
  Encoding encode(const std::string& text, const std::string* text_pair,
                  std::optional<int64_t> max_length) const override;
  std::string id_to_token(int64_t id) const override;
  int64_t pad_token_id() const override { return pad_id_; }
  int64_t model_max_length() const override { return config_.model_max_length; }
  std::vector<std::string> model_input_names() const override { return {"input_ids", "token_type_ids", "attention_mask"}; }
  int64_t token_to_id(const std::string& token) const;  // unk id when absent

 private:
  void wordpiece(const std::u32string& word, std::vector<std::string>& out) const;
  std::vector<int64_t> ids_of(const std::string& text) const;

  BertTokenizerConfig config_;
  std::vector<std::string> id_to_token_;
  std::unordered_map<std::string, int64_t> vocab_;
  std::vector<std::u32string> no_split_;  // added/special tokens matched before any normalisation
  int64_t unk_id_ = 0, sep_id_ = 0, cls_id_ = 0, pad_id_ = 0;
};

}  // namespace mmx::text
