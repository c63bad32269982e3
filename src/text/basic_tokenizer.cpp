#include "text/basic_tokenizer.hpp"

#include <cstring>

#include "core/log.hpp"
#include "text/unicode.hpp"

namespace mmx::text {

namespace {

bool is_bert_whitespace(char32_t c) {  // tokenization_bert._is_whitespace
  return c == U' ' || c == U'\t' || c == U'\n' || c == U'\r' || std::strcmp(category(c), "Zs") == 0;
}
bool is_bert_control(char32_t c) {  // tokenization_bert._is_control: every "C*" category
  if (c == U'\t' || c == U'\n' || c == U'\r') return false;
  return category(c)[0] == 'C';
}
bool is_bert_punctuation(char32_t c) {  // ASCII non-alphanumerics count even where Unicode says "S*"
  if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126)) return true;
  return category(c)[0] == 'P';
}
bool is_cjk(char32_t c) {  // the CJK Unified Ideographs blocks, as in tokenization_bert._is_chinese_char
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

}  // namespace

std::vector<std::u32string> split_whitespace(const std::u32string& text) {
  std::vector<std::u32string> out;
  std::u32string current;
  for (char32_t c : text) {
    if (is_python_space(c)) {
      if (!current.empty()) out.push_back(std::move(current));
      current.clear();
    } else {
      current.push_back(c);
    }
  }
  if (!current.empty()) out.push_back(std::move(current));
  return out;
}


std::vector<std::u32string> BasicTokenizer::tokenize(const std::u32string& text) const {
  std::u32string cleaned;
  cleaned.reserve(text.size());
  for (char32_t c : text) {
    if (c == 0 || c == 0xFFFD || is_bert_control(c)) continue;
    if (is_bert_whitespace(c)) {
      cleaned.push_back(U' ');
    } else if (tokenize_chinese_chars && is_cjk(c)) {
      cleaned.push_back(U' ');
      cleaned.push_back(c);
      cleaned.push_back(U' ');
    } else {
      cleaned.push_back(c);
    }
  }
  const bool strip = strip_accents.value_or(do_lower_case);
  std::vector<std::u32string> out;
  for (std::u32string token : split_whitespace(nfc(cleaned))) {
    if (do_lower_case) {
      token = python_lower(token);
    }
    if (strip) {
      std::u32string stripped;
      for (char32_t c : nfd(token))
        if (std::strcmp(category(c), "Mn") != 0) stripped.push_back(c);
      token = std::move(stripped);
    }
    if (!do_split_on_punc) {
      if (!token.empty()) out.push_back(std::move(token));
      continue;
    }
    std::u32string word;
    for (char32_t c : token) {
      if (is_bert_punctuation(c)) {
        if (!word.empty()) out.push_back(std::move(word));
        word.clear();
        out.push_back(std::u32string(1, c));
      } else {
        word.push_back(c);
      }
    }
    if (!word.empty()) out.push_back(std::move(word));
  }
  return out;
}

void split_on_special_tokens(const std::u32string& text, const std::vector<std::u32string>& specials,
                             const std::function<void(const std::u32string&)>& on_text,
                             const std::function<void(const std::u32string&)>& on_special) {
  std::u32string chunk;
  for (size_t i = 0; i < text.size();) {
    const std::u32string* match = nullptr;
    for (const auto& special : specials)
      if (text.compare(i, special.size(), special) == 0) {
        match = &special;
        break;
      }
    if (!match) {
      chunk.push_back(text[i++]);
      continue;
    }
    if (!chunk.empty()) on_text(chunk);
    chunk.clear();
    on_special(*match);
    i += match->size();
  }
  if (!chunk.empty()) on_text(chunk);
}

void truncate_longest_first(std::vector<int64_t>& a, std::vector<int64_t>* b, int64_t specials, int64_t max_length) {
  int64_t remove = static_cast<int64_t>(a.size() + (b ? b->size() : 0)) + specials - max_length;
  if (remove <= 0) return;
  if (!b) {
    if (static_cast<int64_t>(a.size()) > remove) a.resize(a.size() - static_cast<size_t>(remove));
    else log_warn("cannot truncate to max_length ", max_length, ": the special tokens alone need ", specials);
    return;
  }
  for (; remove > 0; --remove) {
    if (a.size() > b->size()) a.pop_back();
    else if (!b->empty()) b->pop_back();
    else break;
  }
}

void check_added_ids(const std::string& folder, size_t vocab_size,
                     const std::vector<std::pair<std::string, int64_t>>& added) {
  const int64_t limit = int64_t(vocab_size + added.size());
  for (const auto& [content, id] : added)
    if (id < 0 || id >= limit)
      fail(folder, ": added token '", content, "' has id ", id, ", beyond the vocabulary of ", vocab_size, " and its ",
           added.size(), " added tokens (tokenizer_config.json added_tokens_decoder, or added_tokens.json)");
}

std::string token_content(const nlohmann::json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_object() && value.contains("content") && value["content"].is_string())
    return value["content"].get<std::string>();
  return {};
}

}  // namespace mmx::text
