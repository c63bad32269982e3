#include "text/wordpiece.hpp"

#include <algorithm>
#include <cstring>
#include <limits>

#include "mmx/files.hpp"
#include "core/log.hpp"
#include "io/json_config.hpp"
#include "text/basic_tokenizer.hpp"
#include "text/unicode.hpp"

namespace mmx::text {

namespace {

constexpr size_t kMaxInputCharsPerWord = 100;


}  // namespace

std::unique_ptr<BertTokenizer> BertTokenizer::load(const std::string& folder) {
  const std::string vocab_path = join_path(folder, "vocab.txt");
  BertTokenizerConfig config;
  std::vector<std::pair<std::string, int64_t>> added;
  std::vector<std::string> vocab;
  if (!file_exists(vocab_path)) fail(folder, ": no vocab.txt (not a BERT WordPiece tokenizer folder)");
  const std::string bytes = read_file(vocab_path);
  if (const size_t bad = find_invalid_utf8(bytes); bad != std::string::npos)
    fail(vocab_path, ": invalid UTF-8 at byte ", bad);
  size_t start = 0;
  while (start < bytes.size()) {  // load_vocab: one token per line, trailing newline removed
    size_t end = bytes.find('\n', start);
    if (end == std::string::npos) end = bytes.size();
    std::string token = bytes.substr(start, end - start);
    if (!token.empty() && token.back() == '\r') token.pop_back();
    vocab.push_back(std::move(token));
    start = end + 1;
  }
  if (vocab.empty()) fail(vocab_path, ": empty vocabulary");

  auto read_special = [&](const JsonObject& json) {
    for (auto [key, field] : {std::pair{"unk_token", &config.unk_token}, {"sep_token", &config.sep_token},
                              {"pad_token", &config.pad_token}, {"cls_token", &config.cls_token},
                              {"mask_token", &config.mask_token}}) {
      auto it = json.json().find(key);
      if (it != json.json().end() && !token_content(*it).empty()) *field = token_content(*it);
    }
  };
  const std::string special_path = join_path(folder, "special_tokens_map.json");
  if (file_exists(special_path)) read_special(JsonObject::load(special_path));
  const std::string config_path = join_path(folder, "tokenizer_config.json");
  if (file_exists(config_path)) {
    const JsonObject json = JsonObject::load(config_path);
    config.do_lower_case = json.get_bool("do_lower_case", true);
    config.do_basic_tokenize = json.get_bool("do_basic_tokenize", true);
    config.tokenize_chinese_chars = json.get_bool("tokenize_chinese_chars", true);
    config.strip_accents = json.get_optional_bool("strip_accents");
    // Saved as 1e30 ("very large") when unknown: anything past int64 is unlimited.
    config.model_max_length = json.get_count("model_max_length", config.model_max_length, limits::kTokenCount);
    read_special(json);
    auto decoder = json.json().find("added_tokens_decoder");
    if (decoder != json.json().end() && decoder->is_object())
      for (auto it = decoder->begin(); it != decoder->end(); ++it) {
        const std::string content = token_content(it.value());
        const int64_t id = json.int_key("added_tokens_decoder", it.key(), limits::kTokenId);
        if (content.empty()) fail(config_path, ": added_tokens_decoder entry '", it.key(), "' is not {id: {\"content\": ...}}");
        added.emplace_back(content, id);
      }
  } else {
    config.model_max_length = std::numeric_limits<int64_t>::max();
  }
  // Older folders list added tokens in added_tokens.json as {"token": id}.
  const std::string added_path = join_path(folder, "added_tokens.json");
  if (file_exists(added_path)) {
    const JsonObject json = JsonObject::load(added_path);
    for (auto it = json.json().begin(); it != json.json().end(); ++it) {
      added.emplace_back(it.key(), json.int_element(it.key(), it.value(), limits::kTokenId));
    }
  }
  check_added_ids(folder, vocab.size(), added);
  return std::make_unique<BertTokenizer>(std::move(vocab), config, std::move(added));
}

BertTokenizer::BertTokenizer(std::vector<std::string> vocab, BertTokenizerConfig config,
                             std::vector<std::pair<std::string, int64_t>> added_tokens)
    : config_(std::move(config)), id_to_token_(std::move(vocab)) {
  for (size_t i = 0; i < id_to_token_.size(); ++i) vocab_[id_to_token_[i]] = static_cast<int64_t>(i);
  for (const auto& [content, id] : added_tokens) {
    if (id >= static_cast<int64_t>(id_to_token_.size())) id_to_token_.resize(static_cast<size_t>(id) + 1);
    id_to_token_[static_cast<size_t>(id)] = content;
    vocab_[content] = id;
  }
  auto require = [&](const std::string& token, const char* role) {
    auto it = vocab_.find(token);
    if (it == vocab_.end()) fail("tokenizer: ", role, " '", token, "' is not in the vocabulary");
    return it->second;
  };
  unk_id_ = require(config_.unk_token, "unk_token");
  sep_id_ = require(config_.sep_token, "sep_token");
  cls_id_ = require(config_.cls_token, "cls_token");
  pad_id_ = require(config_.pad_token, "pad_token");
  // Special and added tokens are cut out of the text before any normalisation and never split.
  std::vector<std::string> no_split = {config_.unk_token, config_.sep_token, config_.pad_token, config_.cls_token,
                                       config_.mask_token};
  for (const auto& [content, id] : added_tokens) no_split.push_back(content);
  for (const auto& t : no_split) {
    std::u32string u = utf8_to_u32(t, "special token");
    if (!u.empty() && std::find(no_split_.begin(), no_split_.end(), u) == no_split_.end()) no_split_.push_back(u);
  }
  // Longest first, so that a token that prefixes another never shadows it.
  std::sort(no_split_.begin(), no_split_.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
}

int64_t BertTokenizer::token_to_id(const std::string& token) const {
  auto it = vocab_.find(token);
  return it == vocab_.end() ? unk_id_ : it->second;
}

std::string BertTokenizer::id_to_token(int64_t id) const {
  if (id < 0 || id >= static_cast<int64_t>(id_to_token_.size())) fail("tokenizer: id ", id, " is outside the vocabulary");
  return id_to_token_[static_cast<size_t>(id)];
}

void BertTokenizer::wordpiece(const std::u32string& word, std::vector<std::string>& out) const {
  if (word.size() > kMaxInputCharsPerWord) {
    out.push_back(config_.unk_token);
    return;
  }
  const size_t first = out.size();
  size_t start = 0;
  while (start < word.size()) {
    size_t end = word.size();
    bool found = false;
    while (start < end) {
      std::string piece = start > 0 ? "##" : "";
      piece += u32_to_utf8(std::u32string_view(word).substr(start, end - start));
      if (vocab_.count(piece)) {
        out.push_back(std::move(piece));
        found = true;
        break;
      }
      --end;
    }
    if (!found) {  // one unknown piece makes the whole word [UNK]
      out.resize(first);
      out.push_back(config_.unk_token);
      return;
    }
    start = end;
  }
}

std::vector<std::string> BertTokenizer::tokenize(const std::string& text) const {
  std::vector<std::string> out;
  auto on_text = [&](const std::u32string& run) {
    std::u32string chunk = run;
    if (config_.do_lower_case) {
      // PreTrainedTokenizer.tokenize lower-cases the text outside special tokens one character at a
      // time (a regex with "(.+?)"), so Σ never sees its word end: no final-sigma form, ever.
      chunk.clear();
      for (char32_t c : run) append_python_lower(chunk, c);
    }
    if (config_.do_basic_tokenize) {
      const BasicTokenizer basic{config_.do_lower_case, config_.tokenize_chinese_chars, config_.strip_accents, true};
      for (const auto& word : basic.tokenize(chunk)) wordpiece(word, out);
    } else {
      for (const auto& word : split_whitespace(chunk)) wordpiece(word, out);
    }
  };
  split_on_special_tokens(utf8_to_u32(text), no_split_, on_text,
                          [&](const std::u32string& special) { out.push_back(u32_to_utf8(special)); });
  return out;
}

std::vector<int64_t> BertTokenizer::ids_of(const std::string& text) const {
  std::vector<int64_t> ids;
  for (const auto& token : tokenize(text)) ids.push_back(token_to_id(token));
  return ids;
}

Encoding BertTokenizer::encode(const std::string& text, const std::string* text_pair,
                               std::optional<int64_t> max_length) const {
  std::vector<int64_t> a = ids_of(text), b;
  if (text_pair) b = ids_of(*text_pair);
  const int64_t specials = text_pair ? 3 : 2;
  if (max_length) truncate_longest_first(a, text_pair ? &b : nullptr, specials, *max_length);
  Encoding e;
  e.input_ids.push_back(cls_id_);
  e.input_ids.insert(e.input_ids.end(), a.begin(), a.end());
  e.input_ids.push_back(sep_id_);
  e.token_type_ids.assign(e.input_ids.size(), 0);
  if (text_pair) {
    e.input_ids.insert(e.input_ids.end(), b.begin(), b.end());
    e.input_ids.push_back(sep_id_);
    e.token_type_ids.resize(e.input_ids.size(), 1);
  }
  e.attention_mask.assign(e.input_ids.size(), 1);
  return e;
}

}  // namespace mmx::text
