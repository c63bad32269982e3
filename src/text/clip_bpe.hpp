// CLIPTokenizer (transformers, slow, without ftfy): BasicTokenizer clean-up (no accent stripping, no
// punctuation split), CLIP's pre-tokenisation pattern, byte-level mapping, BPE by merge rank with
// "</w>" word ends, <|startoftext|> … <|endoftext|>. Follows transformers 4.45 tokenization_clip.py.
#pragma once
#include <string>
#include <unordered_map>
#include <vector>

#include "mmx/tokenizer.hpp"

namespace mmx::text {

class ClipTokenizer : public Tokenizer {
 public:
  // Reads vocab.json, merges.txt, and tokenizer_config.json / special_tokens_map.json when present.
  static std::unique_ptr<ClipTokenizer> load(const std::string& folder);

  std::vector<std::string> tokenize(const std::string& text) const override;
  Encoding encode(const std::string& text, const std::string* text_pair,
                  std::optional<int64_t> max_length) const override;
  std::string id_to_token(int64_t id) const override;
  int64_t pad_token_id() const override { return pad_id_; }
  int64_t model_max_length() const override { return model_max_length_; }
  std::vector<std::string> model_input_names() const override { return {"input_ids", "attention_mask"}; }

 private:
  void bpe(const std::string& token, std::vector<std::string>& out) const;
  std::vector<int64_t> ids_of(const std::string& text) const;
  int64_t id_of(const std::string& token) const;

  std::unordered_map<std::string, int64_t> encoder_;  // vocab.json
  std::vector<std::string> decoder_;
  std::unordered_map<std::string, int64_t> added_;      // special / added tokens → id
  std::vector<std::u32string> no_split_;                // the same, longest first, cut out before normalising
  std::unordered_map<std::string, int> ranks_;          // "first second" → merge rank
  std::string byte_encoder_[256];                       // byte → its printable stand-in (UTF-8)
  int64_t bos_id_ = 0, eos_id_ = 0, pad_id_ = 0, unk_id_ = 0;
  int64_t model_max_length_ = 77;
};

}  // namespace mmx::text
