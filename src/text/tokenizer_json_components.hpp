// The parts of the tokenizer.json reader (text/tokenizer_json.cpp) that its component files share: where
// a component sits in the file (for messages), JSON member readers, the character classes tokenizers
// uses, regexes (PCRE2 on code points), NormalizedString::split's behaviours, and the interfaces of
// normalizers (tokenizer_json_normalizers.cpp), pre-tokenizers (tokenizer_json_pre_tokenizers.cpp) and
// models (tokenizer_json_models.cpp). Internal to src/text/.
#pragma once
#define PCRE2_CODE_UNIT_WIDTH 32
#include <pcre2.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "mmx/error.hpp"
#include "mmx/files.hpp"
#include "text/unicode.hpp"

namespace mmx::text::tokenizer_json {

using U32 = std::u32string;
using Json = nlohmann::json;

// Where a component sits in the file, for messages: "tokenizer.json: pre_tokenizer.pretokenizers[1]".
struct Where {
  const std::string& path;
  std::string key;
  Where at(const std::string& k) const { return {path, key.empty() ? k : key + "." + k}; }
  Where at(size_t i) const { return {path, str(key, "[", i, "]")}; }
  template <class... A>
  [[noreturn]] void fail(A&&... a) const {
    mmx::fail(path, ": ", key, " ", std::forward<A>(a)...);
  }
};

inline const Json& member(const Json& j, const Where& w, const char* key) {
  if (!j.is_object() || !j.contains(key)) w.fail("has no \"", key, "\"");
  return j[key];
}
inline std::string string_member(const Json& j, const Where& w, const char* key) {
  const Json& v = member(j, w, key);
  if (!v.is_string()) w.at(key).fail("is not a string");
  return v.get<std::string>();
}
inline bool bool_member(const Json& j, const Where& w, const char* key, bool fallback) {
  if (!j.is_object() || !j.contains(key) || j[key].is_null()) return fallback;
  if (!j[key].is_boolean()) w.at(key).fail("is not true or false");
  return j[key].get<bool>();
}
inline U32 u32_member(const Json& j, const Where& w, const char* key) {
  return utf8_to_u32(string_member(j, w, key), w.path + ": " + w.at(key).key);
}
inline std::string type_of(const Json& j, const Where& w) {
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) w.fail("has no \"type\"");
  return j["type"].get<std::string>();
}
[[noreturn]] inline void unsupported(const Where& w, const std::string& type, const char* supported) {
  w.fail("'", type, "' is not implemented by mmx (it reads ", supported, ")");
}

// Rust's char::is_whitespace: the White_Space property.
inline bool is_whitespace(char32_t c) {
  switch (c) {
    case 0x09:
    case 0x0A:
    case 0x0B:
    case 0x0C:
    case 0x0D:
    case 0x20:
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
      return true;
    default:
      return c >= 0x2000 && c <= 0x200A;
  }
}
inline bool category_is(char32_t c, char first) { return category(c)[0] == first; }
// tokenizers' is_punc: ASCII punctuation or a Unicode P* character.
inline bool is_punctuation(char32_t c) {
  return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126) ||
         category_is(c, 'P');
}
inline bool is_numeric(char32_t c) {  // char::is_numeric: Nd, Nl, No
  return category_is(c, 'N');
}
inline bool is_cjk(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}
inline bool is_word_char(char32_t c) {  // tokenizers' added-token single_word test: alphanumeric or '_'
  const char* cat = category(c);
  return c == U'_' || cat[0] == 'L' || cat[0] == 'N';
}
inline U32 lowercase(const U32& s) {  // char::to_lowercase, one character at a time (no final sigma)
  U32 out;
  out.reserve(s.size());
  for (char32_t c : s) append_python_lower(out, c);
  return out;
}

// ---- regular expressions (Oniguruma syntax in the file; PCRE2 on code points here) ----

class Regex {
 public:
  Regex(const U32& pattern, const Where& w) {
    int error = 0;
    PCRE2_SIZE offset = 0;
    code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), PCRE2_UTF | PCRE2_UCP, &error,
                          &offset, nullptr);
    if (!code_) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(error, message, 256);
      w.fail("regex '", u32_to_utf8(pattern), "' does not compile at offset ", offset, ": ",
             u32_to_utf8(U32(reinterpret_cast<const char32_t*>(message))));
    }
    pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE);  // an optimisation: matching works without it
  }
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;
  ~Regex() { pcre2_code_free(code_); }
  // Non-empty, non-overlapping matches, left to right: [begin, end) in code points.
  std::vector<std::pair<size_t, size_t>> find_all(const U32& s) const {
    std::vector<std::pair<size_t, size_t>> out;
    pcre2_match_data* data = pcre2_match_data_create_from_pattern(code_, nullptr);
    size_t start = 0;
    while (start <= s.size()) {
      const int rc = pcre2_match(code_, reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), start, 0, data, nullptr);
      if (rc == PCRE2_ERROR_NOMATCH) break;
      if (rc < 0) {
        pcre2_match_data_free(data);
        fail("tokenizer regex: matching failed (PCRE2 error ", rc, ")");
      }
      const PCRE2_SIZE* v = pcre2_get_ovector_pointer(data);
      if (v[1] > v[0]) {
        out.emplace_back(v[0], v[1]);
        start = v[1];
      } else {
        start = v[0] + 1;  // an empty match: look again one character on
      }
    }
    pcre2_match_data_free(data);
    return out;
  }

 private:
  pcre2_code* code_ = nullptr;
};

// A Split / Replace pattern: {"String": s} or {"Regex": r}.
struct Pattern {
  U32 literal;
  std::shared_ptr<Regex> regex;
  Pattern(const Json& j, const Where& w) {
    if (j.is_object() && j.contains("String") && j["String"].is_string()) {
      literal = u32_member(j, w, "String");
    } else if (j.is_object() && j.contains("Regex") && j["Regex"].is_string()) {
      regex = std::make_shared<Regex>(u32_member(j, w, "Regex"), w);
    } else {
      w.fail("is neither {\"String\": ...} nor {\"Regex\": ...}");
    }
  }
  std::vector<std::pair<size_t, size_t>> find_all(const U32& s) const {
    if (regex) return regex->find_all(s);
    std::vector<std::pair<size_t, size_t>> out;
    if (literal.empty()) return out;
    for (size_t at = s.find(literal); at != U32::npos; at = s.find(literal, at + literal.size()))
      out.emplace_back(at, at + literal.size());
    return out;
  }
};

// ---- splitting (tokenizers' NormalizedString::split and its SplitDelimiterBehavior) ----

enum class Behavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

inline Behavior behavior_from(const Json& j, const Where& w) {
  const std::string b = j.is_string() ? j.get<std::string>() : "";
  if (b == "Removed") return Behavior::Removed;
  if (b == "Isolated") return Behavior::Isolated;
  if (b == "MergedWithPrevious") return Behavior::MergedWithPrevious;
  if (b == "MergedWithNext") return Behavior::MergedWithNext;
  if (b == "Contiguous") return Behavior::Contiguous;
  w.fail("'", b, "' is not a split behavior (Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous)");
}

struct Span {
  size_t begin, end;
  bool match;
};

// Matches → spans covering the whole string (Pattern::find_matches).
inline std::vector<Span> spans_of(const U32& s, const std::vector<std::pair<size_t, size_t>>& matches) {
  std::vector<Span> out;
  size_t prev = 0;
  for (const auto& [b, e] : matches) {
    if (prev != b) out.push_back({prev, b, false});
    out.push_back({b, e, true});
    prev = e;
  }
  if (prev != s.size()) out.push_back({prev, s.size(), false});
  return out;
}
// Every character for which `pred` holds is a match of its own.
template <class Pred>
inline std::vector<std::pair<size_t, size_t>> char_matches(const U32& s, Pred pred) {
  std::vector<std::pair<size_t, size_t>> out;
  for (size_t i = 0; i < s.size(); ++i)
    if (pred(s[i])) out.emplace_back(i, i + 1);
  return out;
}

inline void split(const U32& s, std::vector<Span> spans, Behavior behavior, bool invert, std::vector<U32>& out) {
  if (invert)
    for (auto& sp : spans) sp.match = !sp.match;
  std::vector<std::pair<size_t, size_t>> pieces;
  bool previous_match = false;
  switch (behavior) {
    case Behavior::Removed:
      for (const auto& sp : spans)
        if (!sp.match) pieces.emplace_back(sp.begin, sp.end);
      break;
    case Behavior::Isolated:
      for (const auto& sp : spans) pieces.emplace_back(sp.begin, sp.end);
      break;
    case Behavior::MergedWithPrevious:
      for (const auto& sp : spans) {
        if (sp.match && !previous_match && !pieces.empty())
          pieces.back().second = sp.end;
        else
          pieces.emplace_back(sp.begin, sp.end);
        previous_match = sp.match;
      }
      break;
    case Behavior::MergedWithNext:
      for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
        if (it->match && !previous_match && !pieces.empty())
          pieces.back().first = it->begin;
        else
          pieces.emplace_back(it->begin, it->end);
        previous_match = it->match;
      }
      std::reverse(pieces.begin(), pieces.end());
      break;
    case Behavior::Contiguous:
      for (const auto& sp : spans) {
        if (sp.match == previous_match && !pieces.empty())
          pieces.back().second = sp.end;
        else
          pieces.emplace_back(sp.begin, sp.end);
        previous_match = sp.match;
      }
      break;
  }
  for (const auto& [b, e] : pieces)
    if (e > b) out.push_back(s.substr(b, e - b));
}

// "A+B+C": the names of a Sequence's steps, for --verbose.
template <class Steps>
std::string joined_names(const Steps& steps) {
  std::string n;
  for (const auto& s : steps) {
    if (!n.empty()) n += '+';
    n += s->name();
  }
  return n;
}

// The steps of a Sequence, each made by `make` (null entries dropped).
template <class Ptr, class Make>
std::vector<Ptr> sequence_steps(const Json& j, const Where& w, const char* key, Make make) {
  std::vector<Ptr> steps;
  const Json& list = member(j, w, key);
  if (!list.is_array()) w.at(key).fail("is not a list");
  for (size_t i = 0; i < list.size(); ++i)
    if (auto p = make(list[i], w.at(key).at(i))) steps.push_back(std::move(p));
  return steps;
}

// ---- the three component kinds: each file makes its kind from the JSON ----

// Rewrites the text in place (tokenizers' NormalizedString, without the alignments mmx does not keep).
struct Normalizer {
  virtual ~Normalizer() = default;
  virtual void apply(U32& s) const = 0;
  virtual std::string name() const = 0;
};
using NormalizerPtr = std::unique_ptr<Normalizer>;

NormalizerPtr make_normalizer(const Json& j, const Where& w);
// BertTokenizerFast.__init__'s rewrite of a BertNormalizer from tokenizer_config.json; false when the
// normalizer is not one.
bool set_bert_options(Normalizer& normalizer, bool lowercase, std::optional<bool> strip_accents, bool chinese_chars);

struct PreTokenizer {
  virtual ~PreTokenizer() = default;
  // Splits every piece further. `text_start`: the first piece begins the whole input (Metaspace "first").
  virtual void apply(std::vector<U32>& pieces, bool text_start) const = 0;
  virtual std::string name() const = 0;
};
using PreTokenizerPtr = std::unique_ptr<PreTokenizer>;

PreTokenizerPtr make_pre_tokenizer(const Json& j, const Where& w);
// Splits each piece with `fn(piece, out)`.
template <class Fn>
void split_each(std::vector<U32>& pieces, Fn fn) {
  std::vector<U32> out;
  for (const U32& p : pieces) fn(p, out);
  pieces = std::move(out);
}

struct Token {
  int64_t id;
  std::string text;
};

struct Model {
  virtual ~Model() = default;
  virtual void tokenize(const U32& word, std::vector<Token>& out) const = 0;
  virtual std::string name() const = 0;
  std::vector<std::string> id_to_token;
  std::unordered_map<std::string, int64_t> vocab;
  std::optional<int64_t> lookup(const std::string& t) const {
    const auto it = vocab.find(t);
    return it == vocab.end() ? std::nullopt : std::optional<int64_t>(it->second);
  }
  // {"token": id, ...}; ids need not be dense (BPE vocabularies may skip some).
  void read_vocab_object(const Json& j, const Where& w) {
    if (!j.is_object() || j.empty()) w.fail("is not an object of tokens and ids");
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (!it.value().is_number_integer()) w.fail("gives token '", it.key(), "' a non-integer id");
      const int64_t id = it.value().get<int64_t>();
      if (id < 0 || id >= (int64_t(1) << 24)) w.fail("gives token '", it.key(), "' id ", id, ", outside 0…2^24");
      if (find_invalid_utf8(it.key()) != std::string::npos) w.fail("holds a token that is not UTF-8");
      if (size_t(id) >= id_to_token.size()) id_to_token.resize(size_t(id) + 1);
      id_to_token[size_t(id)] = it.key();
      vocab[it.key()] = id;
    }
  }
};

std::unique_ptr<Model> make_model(const Json& j, const Where& w);

}  // namespace mmx::text::tokenizer_json
