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

namespace {

// The tokenizers library's serialization (tokenizer.json) of a BERT tokenizer, as transformers'
// BertConverter writes it: BertNormalizer, BertPreTokenizer, the [CLS] $A [SEP] template, a WordPiece
// model. It is the same algorithm as vocab.txt + BasicTokenizer; any other component is refused by
// name rather than run differently. Fills the vocabulary (by id) and the settings it carries.
void read_tokenizer_json(const std::string& path, std::vector<std::string>& vocab, BertTokenizerConfig& config,
                         std::vector<std::pair<std::string, int64_t>>& added) {
  const JsonObject json = JsonObject::load(path);
  const nlohmann::json& j = json.json();
  auto type_of = [&](const char* key) -> std::string {
    if (!j.contains(key) || j[key].is_null()) return "null";
    if (!j[key].is_object() || !j[key].contains("type") || !j[key]["type"].is_string())
      fail(path, ": '", key, "' has no \"type\"");
    return j[key]["type"].get<std::string>();
  };
  auto unsupported = [&](const char* key, const std::string& type, const char* expected) {
    fail(path, ": ", key, " '", type, "' is not implemented for a BERT model (mmx reads ", expected, ")");
  };
  if (const std::string t = type_of("model"); t != "WordPiece") unsupported("model", t, "WordPiece");
  const nlohmann::json& model = j["model"];
  if (model.value("continuing_subword_prefix", "##") != "##")
    fail(path, ": model.continuing_subword_prefix '", model.value("continuing_subword_prefix", ""), "' is not \"##\"");
  if (!model.contains("max_input_chars_per_word") || !model["max_input_chars_per_word"].is_number_integer() ||
      model["max_input_chars_per_word"].get<int64_t>() != int64_t(kMaxInputCharsPerWord))
    fail(path, ": model.max_input_chars_per_word must be ", kMaxInputCharsPerWord, ", as BertTokenizer's");
  if (!model.contains("vocab") || !model["vocab"].is_object() || model["vocab"].empty())
    fail(path, ": model.vocab is not an object of tokens and ids");
  const nlohmann::json& ids = model["vocab"];
  vocab.assign(ids.size(), std::string());
  std::vector<bool> seen(ids.size(), false);
  for (auto it = ids.begin(); it != ids.end(); ++it) {
    const int64_t id = json.int_element("model.vocab", it.value(), limits::kTokenId);
    if (id >= int64_t(ids.size()) || seen[size_t(id)])
      fail(path, ": model.vocab gives token '", it.key(), "' id ", id, ": ids must be 0 to ", ids.size() - 1, ", each once");
    if (find_invalid_utf8(it.key()) != std::string::npos) fail(path, ": model.vocab holds a token that is not UTF-8");
    vocab[size_t(id)] = it.key();
    seen[size_t(id)] = true;
  }
  if (model.contains("unk_token") && model["unk_token"].is_string()) config.unk_token = model["unk_token"].get<std::string>();

  if (const std::string t = type_of("normalizer"); t != "BertNormalizer") unsupported("normalizer", t, "BertNormalizer");
  const nlohmann::json& norm = j["normalizer"];
  if (!norm.value("clean_text", true)) fail(path, ": normalizer.clean_text false is not implemented (BertTokenizer cleans)");
  config.tokenize_chinese_chars = norm.value("handle_chinese_chars", true);
  config.do_lower_case = norm.value("lowercase", true);
  config.strip_accents = norm.contains("strip_accents") && norm["strip_accents"].is_boolean()
                             ? std::optional<bool>(norm["strip_accents"].get<bool>())
                             : std::nullopt;
  if (const std::string t = type_of("pre_tokenizer"); t != "BertPreTokenizer") unsupported("pre_tokenizer", t, "BertPreTokenizer");

  // The post-processor names the tokens around a text: BertProcessing's pair, or the template
  // [CLS]:0 $A:0 [SEP]:0 (and [CLS] $A [SEP] $B:1 [SEP]:1 for pairs).
  const std::string post = type_of("post_processor");
  const nlohmann::json& p = j["post_processor"];
  if (post == "BertProcessing") {
    for (auto [key, field] : {std::pair{"cls", &config.cls_token}, {"sep", &config.sep_token}}) {
      if (!p.contains(key) || !p[key].is_array() || p[key].size() != 2 || !p[key][0].is_string())
        fail(path, ": post_processor.", key, " is not [token, id]");
      *field = p[key][0].get<std::string>();
    }
  } else if (post == "TemplateProcessing") {
    auto piece = [&](const nlohmann::json& e, std::string& special, std::string& sequence, int64_t& type_id) {
      const char* kind = e.contains("SpecialToken") ? "SpecialToken" : e.contains("Sequence") ? "Sequence" : nullptr;
      if (!kind) fail(path, ": post_processor template entry ", e.dump(), " is neither a SpecialToken nor a Sequence");
      const nlohmann::json& v = e[kind];
      (std::string(kind) == "SpecialToken" ? special : sequence) = v.value("id", "");
      type_id = v.value("type_id", int64_t(0));
    };
    auto template_of = [&](const char* key, size_t size) {
      if (!p.contains(key) || !p[key].is_array() || p[key].size() != size)
        fail(path, ": post_processor.", key, " is not BERT's template ([CLS] $A [SEP]", size == 5 ? " $B [SEP]" : "", ")");
      return p[key];
    };
    const nlohmann::json single = template_of("single", 3);
    std::string cls, sep, a, dummy;
    int64_t t0 = 0, t1 = 0, t2 = 0;
    piece(single[0], cls, dummy, t0);
    piece(single[1], dummy, a, t1);
    piece(single[2], sep, dummy, t2);
    if (cls.empty() || sep.empty() || a != "A" || t0 || t1 || t2)
      fail(path, ": post_processor.single is not BERT's template [CLS]:0 $A:0 [SEP]:0");
    config.cls_token = cls;
    config.sep_token = sep;
    if (p.contains("pair")) {
      const nlohmann::json pair = template_of("pair", 5);
      std::string c, s1, s2, x, b;
      int64_t u0 = 0, u1 = 0, u2 = 0, u3 = 0, u4 = 0;
      piece(pair[0], c, dummy, u0);
      piece(pair[1], dummy, x, u1);
      piece(pair[2], s1, dummy, u2);
      piece(pair[3], dummy, b, u3);
      piece(pair[4], s2, dummy, u4);
      if (c != cls || x != "A" || s1 != sep || b != "B" || s2 != sep || u0 || u1 || u2 || u3 != 1 || u4 != 1)
        fail(path, ": post_processor.pair is not BERT's template [CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1");
    }
  } else {
    unsupported("post_processor", post, "BertProcessing or TemplateProcessing");
  }

  // added_tokens: the specials (inside the vocabulary) and tokens added past it; flags other than
  // BertTokenizer's defaults would change how text around them is cut.
  if (j.contains("added_tokens") && !j["added_tokens"].is_null()) {
    if (!j["added_tokens"].is_array()) fail(path, ": added_tokens is not a list");
    for (const nlohmann::json& t : j["added_tokens"]) {
      if (!t.is_object() || !t.contains("id") || !t.contains("content") || !t["content"].is_string())
        fail(path, ": an added_tokens entry is not {\"id\": ..., \"content\": ...}");
      const std::string content = t["content"].get<std::string>();
      for (const char* flag : {"lstrip", "rstrip", "single_word"})
        if (t.value(flag, false)) fail(path, ": added token '", content, "' has ", flag, " true, which is not implemented");
      const int64_t id = json.int_element("added_tokens", t["id"], limits::kTokenId);
      if (id < int64_t(vocab.size()) && vocab[size_t(id)] != content)
        fail(path, ": added token '", content, "' has id ", id, ", which the vocabulary gives '", vocab[size_t(id)], "'");
      if (id >= int64_t(vocab.size())) added.emplace_back(content, id);
    }
  }
  if (j.contains("padding") && j["padding"].is_object() && j["padding"].contains("pad_token") && j["padding"]["pad_token"].is_string())
    config.pad_token = j["padding"]["pad_token"].get<std::string>();
}

}  // namespace

std::unique_ptr<BertTokenizer> BertTokenizer::load(const std::string& folder) {
  const std::string vocab_path = join_path(folder, "vocab.txt"), fast_path = join_path(folder, "tokenizer.json");
  BertTokenizerConfig config;
  std::vector<std::pair<std::string, int64_t>> added;
  std::vector<std::string> vocab;
  // vocab.txt is the reference's own file (the slow tokenizer, id for id); a folder holding only
  // tokenizer.json is read from that.
  const bool from_json = !file_exists(vocab_path) && file_exists(fast_path);
  if (!file_exists(vocab_path) && !from_json)
    fail(folder, ": no vocab.txt or tokenizer.json (not a BERT WordPiece tokenizer folder)");
  if (from_json) read_tokenizer_json(fast_path, vocab, config, added);
  const std::string bytes = from_json ? std::string() : read_file(vocab_path);
  if (const size_t bad = find_invalid_utf8(bytes); bad != std::string::npos)
    fail(vocab_path, ": invalid UTF-8 at byte ", bad);
  size_t start = 0;
  while (!from_json && start < bytes.size()) {  // load_vocab: one token per line, trailing newline removed
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
    if (!from_json) {  // tokenizer.json's normalizer says these for a fast tokenizer
      config.do_lower_case = json.get_bool("do_lower_case", true);
      config.do_basic_tokenize = json.get_bool("do_basic_tokenize", true);
      config.tokenize_chinese_chars = json.get_bool("tokenize_chinese_chars", true);
      config.strip_accents = json.get_optional_bool("strip_accents");
    }
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
