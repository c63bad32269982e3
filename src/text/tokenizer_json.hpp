// The Hugging Face `tokenizers` serialization (tokenizer.json), read and run as the fast tokenizers of
// transformers run it: added tokens split out first (lstrip / rstrip / single_word / normalized), then
// normalizer → pre-tokenizer → model (WordPiece, BPE, Unigram) on what is left, then the post-processor's
// template. Follows tokenizers 0.19–0.21 (normalizers/, pre_tokenizers/, models/, processors/). A
// component this file does not implement is an error naming it and where it is, never skipped.
#pragma once
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "mmx/tokenizer.hpp"

namespace mmx::text {

class JsonTokenizer : public Tokenizer {
 public:
  // Reads FOLDER/tokenizer.json, and tokenizer_config.json (model_max_length, pad_token) when present.
  // `bert_options`: the folder's tokenizer is BertTokenizerFast's kind (BERT, DistilBERT), whose
  // __init__ rewrites a BertNormalizer from tokenizer_config.json's do_lower_case (default true),
  // strip_accents and tokenize_chinese_chars (default true); MPNet's and Electra's classes do the same.
  static std::unique_ptr<JsonTokenizer> load(const std::string& folder, bool bert_options = false);
  // Reads one tokenizer.json; `tokenizer_config` may be "" (no file).
  static std::unique_ptr<JsonTokenizer> load_files(const std::string& tokenizer_json,
                                                   const std::string& tokenizer_config, bool bert_options = false);
  ~JsonTokenizer() override;

  std::vector<std::string> tokenize(const std::string& text) const override;
  Encoding encode(const std::string& text, const std::string* text_pair,
                  std::optional<int64_t> max_length) const override;
  std::string id_to_token(int64_t id) const override;
  int64_t pad_token_id() const override;
  int64_t model_max_length() const override;
  std::vector<std::string> model_input_names() const override;
  // What the file holds, for --verbose: "Unigram (250002 pieces), Precompiled+Strip+Replace, Metaspace".
  std::string describe() const;

  struct Impl;

 private:
  explicit JsonTokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mmx::text
