#include "text/clip_bpe.hpp"

#include <algorithm>
#include <climits>
#include <cstring>
#include <limits>

#include "mmx/files.hpp"
#include "io/json_config.hpp"
#include "text/basic_tokenizer.hpp"
#include "text/unicode.hpp"

namespace mmx::text {

namespace {

const char* const kStartOfText = "<|startoftext|>";
const char* const kEndOfText = "<|endoftext|>";


bool is_letter(char32_t c) { return category(c)[0] == 'L'; }
bool is_number(char32_t c) { return category(c)[0] == 'N'; }

// CLIP's pattern, applied to the cleaned, lower-cased text:
// <|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
std::vector<std::u32string> pre_tokenize(const std::u32string& text) {
  static const std::u32string specials[] = {U"<|startoftext|>", U"<|endoftext|>"};
  static const std::u32string contractions[] = {U"'s", U"'t", U"'re", U"'ve", U"'m", U"'ll", U"'d"};
  std::vector<std::u32string> out;
  size_t i = 0;
  const size_t n = text.size();
  while (i < n) {
    const char32_t c = text[i];
    auto starts = [&](const std::u32string& s) { return text.compare(i, s.size(), s) == 0; };
    const std::u32string* fixed = nullptr;
    for (const auto& s : specials)
      if (!fixed && starts(s)) fixed = &s;
    for (const auto& s : contractions)
      if (!fixed && starts(s)) fixed = &s;
    if (fixed) {
      out.push_back(*fixed);
      i += fixed->size();
    } else if (is_letter(c)) {
      size_t j = i;
      while (j < n && is_letter(text[j])) ++j;
      out.push_back(text.substr(i, j - i));
      i = j;
    } else if (is_number(c)) {
      out.push_back(text.substr(i, 1));
      ++i;
    } else if (is_python_space(c)) {
      ++i;
    } else {
      size_t j = i;
      while (j < n && !is_python_space(text[j]) && !is_letter(text[j]) && !is_number(text[j])) ++j;
      out.push_back(text.substr(i, j - i));
      i = j;
    }
  }
  return out;
}

}  // namespace

std::unique_ptr<ClipTokenizer> ClipTokenizer::load(const std::string& folder) {
  const std::string vocab_path = join_path(folder, "vocab.json"), merges_path = join_path(folder, "merges.txt");
  if (!file_exists(vocab_path) || !file_exists(merges_path))
    fail(folder, ": a CLIP tokenizer needs vocab.json and merges.txt");
  auto t = std::unique_ptr<ClipTokenizer>(new ClipTokenizer());
  const JsonObject vocab = JsonObject::load(vocab_path);
  for (auto it = vocab.json().begin(); it != vocab.json().end(); ++it) {
    const int64_t id = vocab.int_element(it.key(), it.value(), limits::kTokenId);
    t->encoder_[it.key()] = id;
    if (id >= static_cast<int64_t>(t->decoder_.size())) t->decoder_.resize(size_t(id) + 1);
    t->decoder_[size_t(id)] = it.key();
  }
  // merges.txt: a "#version" line, then "first second" per line in rank order; CLIP uses the first
  // 49152 − 256 − 2 of them.
  const std::string merges = read_file(merges_path);
  if (const size_t bad = find_invalid_utf8(merges); bad != std::string::npos) fail(merges_path, ": invalid UTF-8 at byte ", bad);
  size_t pos = 0, line_no = 0;
  int rank = 0;
  constexpr int kMaxMerges = 49152 - 256 - 2;
  while (pos < merges.size() && rank < kMaxMerges) {
    size_t end = merges.find('\n', pos);
    if (end == std::string::npos) end = merges.size();
    std::string line = merges.substr(pos, end - pos);
    pos = end + 1;
    if (line_no++ == 0) continue;  // the version header
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const size_t space = line.find(' ');
    if (space == std::string::npos || space == 0 || space + 1 >= line.size())
      fail(merges_path, ": line ", line_no, " is not 'first second'");
    t->ranks_.emplace(line, rank++);
  }
  // bytes_to_unicode: printable bytes stand for themselves, the others for U+0100 onwards.
  int next = 0;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    std::string s;
    append_utf8(s, printable ? char32_t(b) : char32_t(256 + next++));
    t->byte_encoder_[b] = s;
  }

  std::string bos = kStartOfText, eos = kEndOfText, pad = kEndOfText, unk = kEndOfText;
  std::vector<std::pair<std::string, int64_t>> added;
  auto read_special = [&](const JsonObject& json) {
    for (auto [key, field] : {std::pair{"bos_token", &bos}, {"eos_token", &eos}, {"pad_token", &pad}, {"unk_token", &unk}}) {
      auto it = json.json().find(key);
      if (it != json.json().end() && !token_content(*it).empty()) *field = token_content(*it);
    }
  };
  const std::string special_path = join_path(folder, "special_tokens_map.json");
  if (file_exists(special_path)) read_special(JsonObject::load(special_path));
  const std::string config_path = join_path(folder, "tokenizer_config.json");
  if (file_exists(config_path)) {
    const JsonObject json = JsonObject::load(config_path);
    read_special(json);
    t->model_max_length_ = json.get_count("model_max_length", t->model_max_length_, limits::kTokenCount);
    auto decoder = json.json().find("added_tokens_decoder");
    if (decoder != json.json().end() && decoder->is_object())
      for (auto it = decoder->begin(); it != decoder->end(); ++it)
        added.emplace_back(token_content(it.value()), json.int_key("added_tokens_decoder", it.key(), limits::kTokenId));
  }
  check_added_ids(folder, t->encoder_.size(), added);
  // Special tokens are added tokens too (PreTrainedTokenizer._add_tokens): an existing vocabulary entry
  // keeps its id, so SDXL's pad "!" (id 0) is cut out of texts whole, without "</w>".
  for (const auto& [content, id] : added)
    if (!content.empty()) t->added_[content] = id;
  for (const std::string* s : {&bos, &eos, &unk, &pad}) {
    if (t->added_.count(*s)) continue;
    auto it = t->encoder_.find(*s);
    if (it == t->encoder_.end()) fail(folder, ": special token '", *s, "' is not in vocab.json");
    t->added_[*s] = it->second;
  }
  for (const auto& [content, id] : t->added_) {
    t->no_split_.push_back(utf8_to_u32(content, "special token"));
    if (id >= static_cast<int64_t>(t->decoder_.size())) t->decoder_.resize(size_t(id) + 1);
    t->decoder_[size_t(id)] = content;
  }
  std::sort(t->no_split_.begin(), t->no_split_.end(), [](const auto& a, const auto& b) { return a.size() > b.size() || (a.size() == b.size() && a < b); });
  t->bos_id_ = t->added_.at(bos);
  t->eos_id_ = t->added_.at(eos);
  t->pad_id_ = t->added_.at(pad);
  t->unk_id_ = t->added_.at(unk);
  return t;
}

void ClipTokenizer::bpe(const std::string& token, std::vector<std::string>& out) const {
  if (token == kStartOfText || token == kEndOfText) {  // the cache transformers seeds with them
    out.push_back(token);
    return;
  }
  // Symbols: one per byte stand-in (each a single code point); the last carries the word end.
  std::vector<std::string> word;
  for (size_t i = 0; i < token.size();) {
    const auto lead = static_cast<unsigned char>(token[i]);
    const size_t len = lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
    word.push_back(token.substr(i, len));
    i += len;
  }
  if (word.empty()) return;
  word.back() += "</w>";
  while (word.size() > 1) {
    int best = INT_MAX;
    size_t best_at = 0;
    for (size_t i = 0; i + 1 < word.size(); ++i) {
      auto it = ranks_.find(word[i] + " " + word[i + 1]);
      if (it != ranks_.end() && it->second < best) {
        best = it->second;
        best_at = i;
      }
    }
    if (best == INT_MAX) break;
    const std::string first = word[best_at], second = word[best_at + 1];
    std::vector<std::string> merged;
    for (size_t i = 0; i < word.size();) {  // every occurrence, left to right, without overlap
      if (i + 1 < word.size() && word[i] == first && word[i + 1] == second) {
        merged.push_back(first + second);
        i += 2;
      } else {
        merged.push_back(word[i++]);
      }
    }
    word = std::move(merged);
  }
  out.insert(out.end(), word.begin(), word.end());
}

std::vector<std::string> ClipTokenizer::tokenize(const std::string& text) const {
  // Without ftfy, transformers cleans text with BasicTokenizer(strip_accents=False, do_split_on_punc=False).
  const BasicTokenizer basic{true, true, false, false};
  std::vector<std::string> out;
  auto on_text = [&](const std::u32string& chunk) {
    std::u32string cleaned;
    for (const auto& word : basic.tokenize(chunk)) {
      if (!cleaned.empty()) cleaned.push_back(U' ');
      cleaned += word;
    }
    for (const auto& piece : pre_tokenize(cleaned)) {
      std::string mapped;
      for (unsigned char b : u32_to_utf8(piece)) mapped += byte_encoder_[b];
      bpe(mapped, out);
    }
  };
  split_on_special_tokens(utf8_to_u32(text), no_split_, on_text,
                          [&](const std::u32string& special) { out.push_back(u32_to_utf8(special)); });
  return out;
}

int64_t ClipTokenizer::id_of(const std::string& token) const {
  if (auto it = added_.find(token); it != added_.end()) return it->second;
  auto it = encoder_.find(token);
  return it == encoder_.end() ? unk_id_ : it->second;
}

std::vector<int64_t> ClipTokenizer::ids_of(const std::string& text) const {
  std::vector<int64_t> ids;
  for (const auto& token : tokenize(text)) ids.push_back(id_of(token));
  return ids;
}

Encoding ClipTokenizer::encode(const std::string& text, const std::string* text_pair,
                               std::optional<int64_t> max_length) const {
  std::vector<int64_t> a = ids_of(text), b;
  if (text_pair) b = ids_of(*text_pair);
  const int64_t specials = text_pair ? 4 : 2;  // <bos> A <eos> (<eos> B <eos>)
  if (max_length) truncate_longest_first(a, text_pair ? &b : nullptr, specials, *max_length);
  Encoding e;
  e.input_ids.push_back(bos_id_);
  e.input_ids.insert(e.input_ids.end(), a.begin(), a.end());
  e.input_ids.push_back(eos_id_);
  if (text_pair) {
    e.input_ids.push_back(eos_id_);
    e.input_ids.insert(e.input_ids.end(), b.begin(), b.end());
    e.input_ids.push_back(eos_id_);
  }
  e.token_type_ids.assign(e.input_ids.size(), 0);
  e.attention_mask.assign(e.input_ids.size(), 1);
  return e;
}

std::string ClipTokenizer::id_to_token(int64_t id) const {
  if (id < 0 || id >= static_cast<int64_t>(decoder_.size())) fail("tokenizer: id ", id, " is outside the vocabulary");
  return decoder_[size_t(id)];
}

}  // namespace mmx::text
