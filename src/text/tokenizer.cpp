#include "io/json_config.hpp"
#include "mmx/files.hpp"
#include "mmx/hub_cache.hpp"
#include "mmx/tokenizer.hpp"
#include "text/clip_bpe.hpp"
#include "text/tokenizer_json.hpp"
#include "text/wordpiece.hpp"

namespace mmx {

std::optional<TokenizerKind> tokenizer_kind_from_class(const std::string& tokenizer_class) {
  if (tokenizer_class == "BertTokenizer" || tokenizer_class == "BertTokenizerFast" ||
      tokenizer_class == "DistilBertTokenizer" || tokenizer_class == "DistilBertTokenizerFast")
    return TokenizerKind::WordPiece;
  if (tokenizer_class == "CLIPTokenizer" || tokenizer_class == "CLIPTokenizerFast") return TokenizerKind::ClipBpe;
  return std::nullopt;
}

TokenizerKind tokenizer_kind_for_folder(const std::string& folder, const std::string& tokenizer_class,
                                        const std::string& config_path) {
  if (const auto kind = tokenizer_kind_from_class(tokenizer_class)) return *kind;
  // Every other class (RobertaTokenizer, XLMRobertaTokenizer, MPNetTokenizer, DistilBertTokenizer, …)
  // is read from its fast serialization, which AutoTokenizer prefers too.
  if (file_exists(join_path(folder, "tokenizer.json"))) return TokenizerKind::TokenizerJson;
  fail(config_path, ": tokenizer_class '", tokenizer_class,
       "' needs the folder's tokenizer.json, which is missing (mmx reads BertTokenizer and CLIPTokenizer from their "
       "slow files, every other tokenizer from tokenizer.json)");
}

std::unique_ptr<Tokenizer> Tokenizer::load(const std::string& model, TokenizerKind kind) {
  const std::string folder = resolve_model_path(model);  // a folder, or a Hub id found in the cache
  switch (kind) {
    case TokenizerKind::WordPiece:  // the fast file wins where both are present, as AutoTokenizer's choice does
      if (file_exists(join_path(folder, "tokenizer.json"))) return text::JsonTokenizer::load(folder, true);
      return text::BertTokenizer::load(folder);
    case TokenizerKind::ClipBpe: return text::ClipTokenizer::load(folder);
    case TokenizerKind::TokenizerJson: return text::JsonTokenizer::load(folder, false);
  }
  fail(folder, ": unknown tokenizer kind");  // unreachable: every kind is a case above
}

std::unique_ptr<Tokenizer> Tokenizer::load(const std::string& model) {
  const std::string folder = resolve_model_path(model);
  const std::string config = join_path(folder, "tokenizer_config.json");
  const auto cls = file_exists(config) ? JsonObject::load(config).get_optional_string("tokenizer_class") : std::nullopt;
  if (!cls)
    throw Error(ErrorKind::Runtime,
                str(folder, ": ", file_exists(config) ? "tokenizer_config.json names no tokenizer_class" : "no tokenizer_config.json",
                    ", so the tokenizer's kind is not known here"),
                "load it through its model folder, whose config.json says (mmx tokenize --model MODEL_DIR does)");
  return load(folder, tokenizer_kind_for_folder(folder, *cls, config));
}

BatchEncoding Tokenizer::encode_batch(const std::vector<std::string>& texts, Padding padding,
                                      std::optional<int64_t> max_length) const {
  BatchEncoding batch;
  for (size_t i = 0; i < texts.size(); ++i) {
    try {
      batch.rows.push_back(encode(texts[i], nullptr, max_length));
    } catch (const Error& e) {
      rethrow_with_context(e, str("text ", i + 1));
    }
  }
  if (padding == Padding::None) return batch;
  size_t target = 0;
  if (padding == Padding::MaxLength) {
    target = static_cast<size_t>(max_length.value_or(model_max_length()));
  } else {
    for (const auto& r : batch.rows) target = std::max(target, r.input_ids.size());
  }
  for (auto& r : batch.rows)
    if (r.input_ids.size() < target) {
      r.input_ids.resize(target, pad_token_id());
      r.token_type_ids.resize(target, 0);
      r.attention_mask.resize(target, 0);
      if (!r.special_tokens_mask.empty()) r.special_tokens_mask.resize(target, 1);  // padding is special, as in tokenizers
    }
  return batch;
}

int64_t BatchEncoding::length() const {
  if (rows.empty()) return 0;
  const size_t n = rows[0].input_ids.size();
  for (const auto& r : rows)
    if (r.input_ids.size() != n) fail("batch rows differ in length: pad them first");
  return static_cast<int64_t>(n);
}

static Tensor stack(const BatchEncoding& batch, std::vector<int64_t> Encoding::*field) {
  const int64_t length = batch.length();
  Tensor t = Tensor::empty({static_cast<int64_t>(batch.rows.size()), length}, DType::I64);
  int64_t* p = t.data<int64_t>();
  for (const auto& r : batch.rows) p = std::copy((r.*field).begin(), (r.*field).end(), p);
  return t;
}

Tensor BatchEncoding::input_ids() const { return stack(*this, &Encoding::input_ids); }
Tensor BatchEncoding::token_type_ids() const { return stack(*this, &Encoding::token_type_ids); }
Tensor BatchEncoding::attention_mask() const { return stack(*this, &Encoding::attention_mask); }

}  // namespace mmx
