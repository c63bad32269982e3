// Tokenizers that reproduce transformers' slow tokenizers id for id (src/text/tokenizer.cpp; the
// algorithms in src/text/: WordPiece, CLIP's byte-level BPE).
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mmx/tensor.hpp"

namespace mmx {

struct Encoding {
  std::vector<int64_t> input_ids, token_type_ids, attention_mask;
  // 1 where the post-processor's template put a special token ([CLS], <s>, </s>), 0 for the text's own
  // tokens; empty from tokenizers whose template is always one special token at each end (BERT, CLIP).
  std::vector<int64_t> special_tokens_mask;
};

enum class Padding { None, Longest, MaxLength };

enum class TokenizerKind {
  WordPiece,  // BertTokenizer: vocab.txt
  ClipBpe,    // CLIPTokenizer: vocab.json + merges.txt
  TokenizerJson,  // any fast tokenizer: the tokenizers library's tokenizer.json (WordPiece, BPE, Unigram)
};
// The kind of a tokenizer_config.json "tokenizer_class" (BertTokenizer[Fast], CLIPTokenizer[Fast]), or none.
std::optional<TokenizerKind> tokenizer_kind_from_class(const std::string& tokenizer_class);
// The tokenizer a folder holds for a tokenizer_class: BERT's and CLIP's as their slow twins (vocab.txt,
// vocab.json + merges.txt), any other class through its tokenizer.json. Fails naming the class when the
// folder has no file mmx can read for it.
TokenizerKind tokenizer_kind_for_folder(const std::string& folder, const std::string& tokenizer_class,
                                        const std::string& config_path);

struct BatchEncoding {
  std::vector<Encoding> rows;  // padded as requested; with Padding::None rows may differ in length
  int64_t length() const;      // the common length (fails when rows differ)
  Tensor input_ids() const;    // [N, L] I64
  Tensor token_type_ids() const;
  Tensor attention_mask() const;
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // Loads the tokenizer of a model (or tokenizer-only) folder, or of a Hub id in the cache, of the kind
  // its tokenizer_config.json names ("tokenizer_class"), as AutoTokenizer does first. A folder that names
  // none is loaded through its model (mmx/model.hpp: load_tokenizer), whose config.json says.
  static std::unique_ptr<Tokenizer> load(const std::string& model);
  static std::unique_ptr<Tokenizer> load(const std::string& model, TokenizerKind kind);

  // tokenizer.tokenize(text): the pieces, without special tokens.
  virtual std::vector<std::string> tokenize(const std::string& text) const = 0;
  // tokenizer(text[, text_pair], truncation=bool(max_length), max_length=max_length).
  virtual Encoding encode(const std::string& text, const std::string* text_pair = nullptr,
                          std::optional<int64_t> max_length = std::nullopt) const = 0;
  virtual std::string id_to_token(int64_t id) const = 0;
  virtual int64_t pad_token_id() const = 0;
  virtual int64_t model_max_length() const = 0;
  // What the model takes, as transformers' model_input_names: BERT input_ids, token_type_ids and
  // attention_mask; CLIP input_ids and attention_mask (it has no token types).
  virtual std::vector<std::string> model_input_names() const = 0;

  // tokenizer(texts, padding=..., truncation=bool(max_length), max_length=...). With
  // Padding::MaxLength and no max_length, pads to model_max_length() as transformers does.
  BatchEncoding encode_batch(const std::vector<std::string>& texts, Padding padding,
                             std::optional<int64_t> max_length = std::nullopt) const;
};

}  // namespace mmx
