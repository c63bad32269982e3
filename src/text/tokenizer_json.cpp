#include "text/tokenizer_json.hpp"

#define PCRE2_CODE_UNIT_WIDTH 32
#include <pcre2.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <set>

#include "io/json_config.hpp"
#include "mmx/files.hpp"
#include "text/unicode.hpp"

namespace mmx::text {
namespace {

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

const Json& member(const Json& j, const Where& w, const char* key) {
  if (!j.is_object() || !j.contains(key)) w.fail("has no \"", key, "\"");
  return j[key];
}
std::string string_member(const Json& j, const Where& w, const char* key) {
  const Json& v = member(j, w, key);
  if (!v.is_string()) w.at(key).fail("is not a string");
  return v.get<std::string>();
}
bool bool_member(const Json& j, const Where& w, const char* key, bool fallback) {
  if (!j.is_object() || !j.contains(key) || j[key].is_null()) return fallback;
  if (!j[key].is_boolean()) w.at(key).fail("is not true or false");
  return j[key].get<bool>();
}
U32 u32_member(const Json& j, const Where& w, const char* key) {
  return utf8_to_u32(string_member(j, w, key), w.path + ": " + w.at(key).key);
}
std::string type_of(const Json& j, const Where& w) {
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) w.fail("has no \"type\"");
  return j["type"].get<std::string>();
}
[[noreturn]] void unsupported(const Where& w, const std::string& type, const char* supported) {
  w.fail("'", type, "' is not implemented by mmx (it reads ", supported, ")");
}

// Rust's char::is_whitespace: the White_Space property.
bool is_whitespace(char32_t c) {
  switch (c) {
    case 0x09: case 0x0A: case 0x0B: case 0x0C: case 0x0D: case 0x20: case 0x85: case 0xA0: case 0x1680:
    case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000:
      return true;
    default:
      return c >= 0x2000 && c <= 0x200A;
  }
}
bool category_is(char32_t c, char first) { return category(c)[0] == first; }
// tokenizers' is_punc: ASCII punctuation or a Unicode P* character.
bool is_punctuation(char32_t c) {
  return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126) ||
         category_is(c, 'P');
}
bool is_numeric(char32_t c) {  // char::is_numeric: Nd, Nl, No
  return category_is(c, 'N');
}
bool is_cjk(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}
bool is_word_char(char32_t c) {  // tokenizers' added-token single_word test: alphanumeric or '_'
  const char* cat = category(c);
  return c == U'_' || cat[0] == 'L' || cat[0] == 'N';
}
U32 lowercase(const U32& s) {  // char::to_lowercase, one character at a time (no final sigma)
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

Behavior behavior_from(const Json& j, const Where& w) {
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
std::vector<Span> spans_of(const U32& s, const std::vector<std::pair<size_t, size_t>>& matches) {
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
std::vector<std::pair<size_t, size_t>> char_matches(const U32& s, Pred pred) {
  std::vector<std::pair<size_t, size_t>> out;
  for (size_t i = 0; i < s.size(); ++i)
    if (pred(s[i])) out.emplace_back(i, i + 1);
  return out;
}

void split(const U32& s, std::vector<Span> spans, Behavior behavior, bool invert, std::vector<U32>& out) {
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
        if (sp.match && !previous_match && !pieces.empty()) pieces.back().second = sp.end;
        else pieces.emplace_back(sp.begin, sp.end);
        previous_match = sp.match;
      }
      break;
    case Behavior::MergedWithNext:
      for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
        if (it->match && !previous_match && !pieces.empty()) pieces.back().first = it->begin;
        else pieces.emplace_back(it->begin, it->end);
        previous_match = it->match;
      }
      std::reverse(pieces.begin(), pieces.end());
      break;
    case Behavior::Contiguous:
      for (const auto& sp : spans) {
        if (sp.match == previous_match && !pieces.empty()) pieces.back().second = sp.end;
        else pieces.emplace_back(sp.begin, sp.end);
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

// ---- normalizers ----

struct Normalizer {
  virtual ~Normalizer() = default;
  virtual void apply(U32& s) const = 0;
  virtual std::string name() const = 0;
};
using NormalizerPtr = std::unique_ptr<Normalizer>;

struct BertNormalizer : Normalizer {
  bool clean_text, handle_chinese_chars, lowercase_text, strip_accents;
  BertNormalizer(const Json& j, const Where& w)
      : clean_text(bool_member(j, w, "clean_text", true)),
        handle_chinese_chars(bool_member(j, w, "handle_chinese_chars", true)),
        lowercase_text(bool_member(j, w, "lowercase", true)),
        strip_accents(bool_member(j, w, "strip_accents", lowercase_text)) {}  // null: follows lowercase
  void apply(U32& s) const override {
    U32 out;
    out.reserve(s.size());
    for (char32_t c : s) {
      if (clean_text) {
        if (c == 0 || c == 0xFFFD) continue;
        if (c != U'\t' && c != U'\n' && c != U'\r' && category_is(c, 'C')) continue;
        if (is_whitespace(c)) c = U' ';
      }
      if (handle_chinese_chars && is_cjk(c)) {
        out += U' ';
        out += c;
        out += U' ';
      } else {
        out += c;
      }
    }
    if (strip_accents) {
      U32 kept;
      for (char32_t c : nfd(out))
        if (std::string_view(category(c)) != "Mn") kept += c;
      out = std::move(kept);
    }
    if (lowercase_text) out = lowercase(out);
    s = std::move(out);
  }
  std::string name() const override { return "Bert"; }
};

struct SimpleNormalizer : Normalizer {
  std::string type;
  explicit SimpleNormalizer(std::string t) : type(std::move(t)) {}
  void apply(U32& s) const override {
    if (type == "Lowercase") s = lowercase(s);
    else if (type == "NFC") s = nfc(s);
    else if (type == "NFD") s = nfd(s);
    else if (type == "NFKC") s = nfkc(s);
    else if (type == "NFKD") s = nfkd(s);
    else if (type == "StripAccents") {  // drops General_Category=Mark, as unicode-normalization's is_combining_mark
      U32 kept;
      for (char32_t c : s)
        if (!category_is(c, 'M')) kept += c;
      s = std::move(kept);
    }
  }
  std::string name() const override { return type; }
};

struct Strip : Normalizer {
  bool left, right;
  Strip(const Json& j, const Where& w) : left(bool_member(j, w, "strip_left", true)), right(bool_member(j, w, "strip_right", true)) {}
  void apply(U32& s) const override {
    size_t b = 0, e = s.size();
    if (left)
      while (b < e && is_whitespace(s[b])) ++b;
    if (right)
      while (e > b && is_whitespace(s[e - 1])) --e;
    s = s.substr(b, e - b);
  }
  std::string name() const override { return "Strip"; }
};

struct Replace : Normalizer {
  Pattern pattern;
  U32 content;
  Replace(const Json& j, const Where& w) : pattern(member(j, w, "pattern"), w.at("pattern")), content(u32_member(j, w, "content")) {}
  void apply(U32& s) const override {
    U32 out;
    size_t prev = 0;
    for (const auto& [b, e] : pattern.find_all(s)) {
      out.append(s, prev, b - prev);
      out += content;
      prev = e;
    }
    out.append(s, prev, U32::npos);
    s = std::move(out);
  }
  std::string name() const override { return "Replace"; }
};

struct Prepend : Normalizer {
  U32 prepend;
  Prepend(const Json& j, const Where& w) : prepend(u32_member(j, w, "prepend")) {}
  void apply(U32& s) const override {
    if (!s.empty()) s = prepend + s;
  }
  std::string name() const override { return "Prepend"; }
};

// SentencePiece's precompiled_charsmap: [u32 trie size][darts-clone double array][NUL-separated
// replacements]. Each grapheme shorter than 6 UTF-8 bytes is looked up whole, else each of its
// characters; a lookup takes the *shortest* key that prefixes it (spm_precompiled's transform).
struct Precompiled : Normalizer {
  std::vector<uint32_t> units;
  std::string replacements;
  Precompiled(const Json& j, const Where& w) {
    const std::string blob = base64_decode(string_member(j, w, "precompiled_charsmap"), w.at("precompiled_charsmap"));
    if (blob.size() < 4) w.at("precompiled_charsmap").fail("is too short to hold a charsmap");
    uint32_t trie_bytes = 0;
    for (int i = 3; i >= 0; --i) trie_bytes = (trie_bytes << 8) | static_cast<uint8_t>(blob[size_t(i)]);
    if (trie_bytes % 4 != 0 || trie_bytes > blob.size() - 4 || trie_bytes == 0)
      w.at("precompiled_charsmap").fail("declares a trie of ", trie_bytes, " bytes in ", blob.size() - 4);
    units.resize(trie_bytes / 4);
    for (size_t u = 0; u < units.size(); ++u)
      for (int i = 3; i >= 0; --i) units[u] = (units[u] << 8) | static_cast<uint8_t>(blob[4 + u * 4 + size_t(i)]);
    replacements = blob.substr(4 + trie_bytes);
  }
  static std::string base64_decode(const std::string& in, const Where& w) {
    std::string out;
    uint32_t acc = 0;
    int bits = 0;
    for (char ch : in) {
      int v;
      if (ch >= 'A' && ch <= 'Z') v = ch - 'A';
      else if (ch >= 'a' && ch <= 'z') v = ch - 'a' + 26;
      else if (ch >= '0' && ch <= '9') v = ch - '0' + 52;
      else if (ch == '+') v = 62;
      else if (ch == '/') v = 63;
      else if (ch == '=') break;
      else w.fail("is not base64 (byte ", int(static_cast<unsigned char>(ch)), ")");
      acc = (acc << 6) | uint32_t(v);
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        out += static_cast<char>((acc >> bits) & 0xFF);
      }
    }
    return out;
  }
  // The replacement of the shortest key prefixing `key`, if any.
  std::optional<std::string_view> transform(std::string_view key) const {
    auto offset = [](uint32_t unit) { return (unit >> 10) << ((unit & (1u << 9)) >> 6); };
    size_t node = 0;
    if (units.empty()) return std::nullopt;
    node ^= offset(units[0]);
    for (unsigned char c : key) {
      if (c == 0) return std::nullopt;
      node ^= c;
      if (node >= units.size()) return std::nullopt;
      const uint32_t unit = units[node];
      if ((unit & ((1u << 31) | 0xFF)) != c) return std::nullopt;
      node ^= offset(unit);
      if (node >= units.size()) return std::nullopt;
      if ((unit >> 8) & 1) {  // a key ends here: its value is an offset into the replacements
        const size_t at = units[node] & ((1u << 31) - 1);
        if (at >= replacements.size()) return std::nullopt;
        const size_t end = replacements.find('\0', at);
        return std::string_view(replacements).substr(at, (end == std::string::npos ? replacements.size() : end) - at);
      }
    }
    return std::nullopt;
  }
  void apply(U32& s) const override {
    std::string out;
    const std::vector<size_t> starts = grapheme_starts(s);
    for (size_t g = 0; g < starts.size(); ++g) {
      const size_t b = starts[g], e = g + 1 < starts.size() ? starts[g + 1] : s.size();
      const std::string grapheme = u32_to_utf8(std::u32string_view(s).substr(b, e - b));
      if (grapheme.size() < 6)
        if (const auto r = transform(grapheme)) {
          out += *r;
          continue;
        }
      for (size_t i = b; i < e; ++i) {
        const std::string ch = u32_to_utf8(std::u32string_view(s).substr(i, 1));
        const auto r = transform(ch);
        out += r ? std::string(*r) : ch;
      }
    }
    s = utf8_to_u32(out, "Precompiled normalizer output");
  }
  std::string name() const override { return "Precompiled"; }
};

struct NormalizerSequence : Normalizer {
  std::vector<NormalizerPtr> steps;
  void apply(U32& s) const override {
    for (const auto& n : steps) n->apply(s);
  }
  std::string name() const override { return joined_names(steps); }
};

NormalizerPtr make_normalizer(const Json& j, const Where& w) {
  if (j.is_null()) return nullptr;
  const std::string type = type_of(j, w);
  if (type == "BertNormalizer") return std::make_unique<BertNormalizer>(j, w);
  if (type == "Lowercase" || type == "NFC" || type == "NFD" || type == "NFKC" || type == "NFKD" || type == "StripAccents")
    return std::make_unique<SimpleNormalizer>(type);
  if (type == "Strip") return std::make_unique<Strip>(j, w);
  if (type == "Replace") return std::make_unique<Replace>(j, w);
  if (type == "Prepend") return std::make_unique<Prepend>(j, w);
  if (type == "Precompiled") return std::make_unique<Precompiled>(j, w);
  if (type == "Sequence") {
    auto seq = std::make_unique<NormalizerSequence>();
    seq->steps = sequence_steps<NormalizerPtr>(j, w, "normalizers", make_normalizer);
    return seq;
  }
  unsupported(w, type,
              "BertNormalizer, Lowercase, NFC, NFD, NFKC, NFKD, StripAccents, Strip, Replace, Prepend, Precompiled, Sequence");
}

// ---- pre-tokenizers ----

struct PreTokenizer {
  virtual ~PreTokenizer() = default;
  // Splits every piece further. `text_start`: the first piece begins the whole input (Metaspace "first").
  virtual void apply(std::vector<U32>& pieces, bool text_start) const = 0;
  virtual std::string name() const = 0;
};
using PreTokenizerPtr = std::unique_ptr<PreTokenizer>;

template <class Fn>
void split_each(std::vector<U32>& pieces, Fn fn) {
  std::vector<U32> out;
  for (const U32& p : pieces) fn(p, out);
  pieces = std::move(out);
}

struct CharSplit : PreTokenizer {  // Bert, Whitespace, WhitespaceSplit, Punctuation, Digits, CharDelimiterSplit
  std::string type;
  Behavior behavior = Behavior::Removed;
  bool individual_digits = false;
  char32_t delimiter = 0;
  std::shared_ptr<Regex> words;  // Whitespace's \w+|[^\w\s]+
  CharSplit(std::string t, const Json& j, const Where& w) : type(std::move(t)) {
    if (type == "Punctuation") behavior = j.contains("behavior") ? behavior_from(j["behavior"], w.at("behavior")) : Behavior::Isolated;
    if (type == "Digits") individual_digits = bool_member(j, w, "individual_digits", false);
    if (type == "CharDelimiterSplit") {
      const U32 d = u32_member(j, w, "delimiter");
      if (d.size() != 1) w.at("delimiter").fail("is not one character");
      delimiter = d[0];
    }
    if (type == "Whitespace") words = std::make_shared<Regex>(U"\\w+|[^\\w\\s]+", w);
  }
  void apply(std::vector<U32>& pieces, bool) const override {
    split_each(pieces, [&](const U32& p, std::vector<U32>& out) {
      if (type == "BertPreTokenizer") {
        std::vector<U32> words;
        split(p, spans_of(p, char_matches(p, is_whitespace)), Behavior::Removed, false, words);
        for (const U32& word : words) split(word, spans_of(word, char_matches(word, is_punctuation)), Behavior::Isolated, false, out);
      } else if (type == "WhitespaceSplit") {
        split(p, spans_of(p, char_matches(p, is_whitespace)), Behavior::Removed, false, out);
      } else if (type == "Whitespace") {
        split(p, spans_of(p, words->find_all(p)), Behavior::Removed, true, out);
      } else if (type == "Punctuation") {
        split(p, spans_of(p, char_matches(p, is_punctuation)), behavior, false, out);
      } else if (type == "Digits") {
        split(p, spans_of(p, char_matches(p, is_numeric)), individual_digits ? Behavior::Isolated : Behavior::Contiguous, false, out);
      } else {  // CharDelimiterSplit
        split(p, spans_of(p, char_matches(p, [&](char32_t c) { return c == delimiter; })), Behavior::Removed, false, out);
      }
    });
  }
  std::string name() const override { return type; }
};

struct Metaspace : PreTokenizer {
  char32_t replacement = U'▁';
  enum class Prepend { Always, First, Never } prepend = Prepend::Always;
  bool split_pieces = true;
  Metaspace(const Json& j, const Where& w) {
    const U32 r = u32_member(j, w, "replacement");
    if (r.size() != 1) w.at("replacement").fail("is not one character");
    replacement = r[0];
    if (j.contains("prepend_scheme") && !j["prepend_scheme"].is_null()) {
      const std::string s = string_member(j, w, "prepend_scheme");
      if (s == "always") prepend = Prepend::Always;
      else if (s == "first") prepend = Prepend::First;
      else if (s == "never") prepend = Prepend::Never;
      else w.at("prepend_scheme").fail("'", s, "' is not always, first or never");
    } else {  // files from before prepend_scheme: add_prefix_space
      prepend = bool_member(j, w, "add_prefix_space", true) ? Prepend::Always : Prepend::Never;
    }
    split_pieces = bool_member(j, w, "split", true);
  }
  void apply(std::vector<U32>& pieces, bool text_start) const override {
    std::vector<U32> out;
    for (size_t i = 0; i < pieces.size(); ++i) {
      U32 p = pieces[i];
      std::replace(p.begin(), p.end(), U' ', replacement);
      const bool starts = !p.empty() && p[0] == replacement;
      if (!starts && (prepend == Prepend::Always || (prepend == Prepend::First && text_start && i == 0)))
        p.insert(p.begin(), replacement);
      if (split_pieces) split(p, spans_of(p, char_matches(p, [&](char32_t c) { return c == replacement; })), Behavior::MergedWithNext, false, out);
      else if (!p.empty()) out.push_back(std::move(p));
    }
    pieces = std::move(out);
  }
  std::string name() const override { return "Metaspace"; }
};

// GPT-2's byte-to-unicode table: printable bytes stand for themselves, the others for 256 + n.
const std::vector<char32_t>& byte_to_unicode() {
  static const std::vector<char32_t> table = [] {
    std::vector<char32_t> t(256);
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      t[size_t(b)] = printable ? char32_t(b) : char32_t(256 + n++);
    }
    return t;
  }();
  return table;
}

struct ByteLevel : PreTokenizer {
  bool add_prefix_space, use_regex;
  std::shared_ptr<Regex> gpt2;
  ByteLevel(const Json& j, const Where& w)
      : add_prefix_space(bool_member(j, w, "add_prefix_space", true)), use_regex(bool_member(j, w, "use_regex", true)) {
    if (use_regex)
      gpt2 = std::make_shared<Regex>(U"'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+", w);
  }
  void apply(std::vector<U32>& pieces, bool) const override {
    split_each(pieces, [&](const U32& piece, std::vector<U32>& out) {
      U32 p = piece;
      if (add_prefix_space && (p.empty() || p[0] != U' ')) p.insert(p.begin(), U' ');
      std::vector<U32> parts;
      if (use_regex) split(p, spans_of(p, gpt2->find_all(p)), Behavior::Isolated, false, parts);
      else if (!p.empty()) parts.push_back(p);
      const auto& table = byte_to_unicode();
      for (const U32& part : parts) {
        U32 mapped;
        for (unsigned char b : u32_to_utf8(part)) mapped += table[b];
        out.push_back(std::move(mapped));
      }
    });
  }
  std::string name() const override { return "ByteLevel"; }
};

struct SplitPre : PreTokenizer {
  Pattern pattern;
  Behavior behavior;
  bool invert;
  SplitPre(const Json& j, const Where& w)
      : pattern(member(j, w, "pattern"), w.at("pattern")),
        behavior(behavior_from(member(j, w, "behavior"), w.at("behavior"))),
        invert(bool_member(j, w, "invert", false)) {}
  void apply(std::vector<U32>& pieces, bool) const override {
    split_each(pieces, [&](const U32& p, std::vector<U32>& out) { split(p, spans_of(p, pattern.find_all(p)), behavior, invert, out); });
  }
  std::string name() const override { return "Split"; }
};

struct PreTokenizerSequence : PreTokenizer {
  std::vector<PreTokenizerPtr> steps;
  void apply(std::vector<U32>& pieces, bool text_start) const override {
    for (const auto& s : steps) s->apply(pieces, text_start);
  }
  std::string name() const override { return joined_names(steps); }
};

PreTokenizerPtr make_pre_tokenizer(const Json& j, const Where& w) {
  if (j.is_null()) return nullptr;
  const std::string type = type_of(j, w);
  if (type == "BertPreTokenizer" || type == "Whitespace" || type == "WhitespaceSplit" || type == "Punctuation" ||
      type == "Digits" || type == "CharDelimiterSplit")
    return std::make_unique<CharSplit>(type, j, w);
  if (type == "Metaspace") return std::make_unique<Metaspace>(j, w);
  if (type == "ByteLevel") return std::make_unique<ByteLevel>(j, w);
  if (type == "Split") return std::make_unique<SplitPre>(j, w);
  if (type == "Sequence") {
    auto seq = std::make_unique<PreTokenizerSequence>();
    seq->steps = sequence_steps<PreTokenizerPtr>(j, w, "pretokenizers", make_pre_tokenizer);
    return seq;
  }
  unsupported(w, type,
              "BertPreTokenizer, Whitespace, WhitespaceSplit, Punctuation, Digits, CharDelimiterSplit, Metaspace, ByteLevel, "
              "Split, Sequence");
}

// ---- models ----

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

struct WordPiece : Model {
  std::string unk_token, prefix;
  size_t max_chars;
  int64_t unk_id;
  WordPiece(const Json& j, const Where& w) {
    read_vocab_object(member(j, w, "vocab"), w.at("vocab"));
    unk_token = string_member(j, w, "unk_token");
    prefix = j.contains("continuing_subword_prefix") && j["continuing_subword_prefix"].is_string()
                 ? j["continuing_subword_prefix"].get<std::string>() : "##";
    max_chars = size_t(j.value("max_input_chars_per_word", 100));
    const auto unk = lookup(unk_token);
    if (!unk) w.at("unk_token").fail("'", unk_token, "' is not in the vocabulary");
    unk_id = *unk;
  }
  void tokenize(const U32& word, std::vector<Token>& out) const override {
    if (word.size() > max_chars) {
      out.push_back({unk_id, unk_token});
      return;
    }
    std::vector<Token> pieces;
    for (size_t start = 0; start < word.size();) {
      size_t end = word.size();
      std::optional<Token> found;
      for (; end > start; --end) {
        const std::string sub = (start > 0 ? prefix : "") + u32_to_utf8(std::u32string_view(word).substr(start, end - start));
        if (const auto id = lookup(sub)) {
          found = Token{*id, sub};
          break;
        }
      }
      if (!found) {  // one piece not in the vocabulary makes the whole word unknown
        out.push_back({unk_id, unk_token});
        return;
      }
      pieces.push_back(std::move(*found));
      start = end;
    }
    out.insert(out.end(), pieces.begin(), pieces.end());
  }
  std::string name() const override { return str("WordPiece (", vocab.size(), " pieces)"); }
};

struct Bpe : Model {
  std::optional<std::string> unk_token;
  std::string prefix, suffix;
  bool fuse_unk, byte_fallback, ignore_merges;
  struct PairHash {
    size_t operator()(const std::pair<int64_t, int64_t>& p) const { return std::hash<int64_t>()(p.first * 1000003 + p.second); }
  };
  std::unordered_map<std::pair<int64_t, int64_t>, std::pair<int64_t, int64_t>, PairHash> merges;  // → (rank, new id)
  Bpe(const Json& j, const Where& w) {
    if (j.contains("dropout") && !j["dropout"].is_null() && j["dropout"].get<double>() > 0)
      w.at("dropout").fail("is set: BPE dropout is for training, and mmx encodes deterministically");
    read_vocab_object(member(j, w, "vocab"), w.at("vocab"));
    if (j.contains("unk_token") && j["unk_token"].is_string()) unk_token = j["unk_token"].get<std::string>();
    prefix = j.contains("continuing_subword_prefix") && j["continuing_subword_prefix"].is_string()
                 ? j["continuing_subword_prefix"].get<std::string>() : "";
    suffix = j.contains("end_of_word_suffix") && j["end_of_word_suffix"].is_string() ? j["end_of_word_suffix"].get<std::string>() : "";
    fuse_unk = bool_member(j, w, "fuse_unk", false);
    byte_fallback = bool_member(j, w, "byte_fallback", false);
    ignore_merges = bool_member(j, w, "ignore_merges", false);
    const Json& list = member(j, w, "merges");
    if (!list.is_array()) w.at("merges").fail("is not a list");
    for (size_t rank = 0; rank < list.size(); ++rank) {
      std::string a, b;
      const Json& m = list[rank];
      if (m.is_string()) {  // "a b"
        const std::string s = m.get<std::string>();
        const size_t space = s.find(' ');
        if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos)
          w.at("merges").at(rank).fail("'", s, "' is not two tokens separated by one space");
        a = s.substr(0, space);
        b = s.substr(space + 1);
      } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {  // ["a", "b"]
        a = m[0].get<std::string>();
        b = m[1].get<std::string>();
      } else {
        w.at("merges").at(rank).fail("is neither \"a b\" nor [\"a\", \"b\"]");
      }
      const auto ia = lookup(a), ib = lookup(b);
      const std::string merged = a + (b.compare(0, prefix.size(), prefix) == 0 ? b.substr(prefix.size()) : b);
      const auto im = lookup(merged);
      if (!ia || !ib || !im) w.at("merges").at(rank).fail("'", a, " ", b, "' merges tokens that are not in the vocabulary");
      merges.emplace(std::make_pair(*ia, *ib), std::make_pair(int64_t(rank), *im));
    }
  }
  void tokenize(const U32& word, std::vector<Token>& out) const override {
    const std::string whole = u32_to_utf8(word);
    if (ignore_merges)
      if (const auto id = lookup(whole)) {
        out.push_back({*id, whole});
        return;
      }
    // Characters → symbols (BPE::merge_word): a character outside the vocabulary becomes its bytes
    // (byte_fallback), else the unknown token, a run of them one token with fuse_unk; without an unknown
    // token it is dropped, as tokenizers does. A pending unknown token is placed at the next known character.
    std::vector<int64_t> symbols;
    const std::optional<int64_t> unk_id = unk_token ? lookup(*unk_token) : std::nullopt;
    bool pending_unk = false;
    for (size_t i = 0; i < word.size(); ++i) {
      std::string piece = u32_to_utf8(std::u32string_view(word).substr(i, 1));
      if (i > 0) piece = prefix + piece;
      if (i + 1 == word.size()) piece += suffix;
      if (const auto id = lookup(piece)) {
        if (pending_unk) symbols.push_back(*unk_id);
        pending_unk = false;
        symbols.push_back(*id);
        continue;
      }
      if (byte_fallback) {
        std::vector<int64_t> bytes;
        for (unsigned char byte : piece) {
          char name[8];
          std::snprintf(name, sizeof name, "<0x%02X>", byte);
          if (const auto id = lookup(name)) bytes.push_back(*id);
        }
        if (bytes.size() == piece.size()) {
          symbols.insert(symbols.end(), bytes.begin(), bytes.end());
          continue;
        }
      }
      if (!unk_id) continue;
      if (pending_unk && !fuse_unk) symbols.push_back(*unk_id);
      pending_unk = true;
    }
    if (pending_unk) symbols.push_back(*unk_id);
    // Merge the lowest-ranked adjacent pair until none is mergeable (leftmost first on equal ranks).
    while (symbols.size() > 1) {
      int64_t best_rank = std::numeric_limits<int64_t>::max(), best_id = -1;
      size_t best_at = 0;
      for (size_t i = 0; i + 1 < symbols.size(); ++i) {
        const auto it = merges.find({symbols[i], symbols[i + 1]});
        if (it != merges.end() && it->second.first < best_rank) {
          best_rank = it->second.first;
          best_id = it->second.second;
          best_at = i;
        }
      }
      if (best_id < 0) break;
      symbols[best_at] = best_id;
      symbols.erase(symbols.begin() + std::ptrdiff_t(best_at) + 1);
    }
    for (int64_t id : symbols) out.push_back({id, id_to_token[size_t(id)]});
  }
  std::string name() const override { return str("BPE (", vocab.size(), " tokens, ", merges.size(), " merges)"); }
};

struct Unigram : Model {
  std::vector<double> scores;
  std::optional<int64_t> unk_id;
  bool byte_fallback;
  double unk_score = 0;
  size_t max_piece_chars = 1;
  std::unordered_map<U32, int64_t> pieces;
  Unigram(const Json& j, const Where& w) {
    const Json& list = member(j, w, "vocab");
    if (!list.is_array() || list.empty()) w.at("vocab").fail("is not a list of [piece, score]");
    double min_score = std::numeric_limits<double>::max();
    for (size_t i = 0; i < list.size(); ++i) {
      const Json& e = list[i];
      if (!e.is_array() || e.size() != 2 || !e[0].is_string() || !e[1].is_number())
        w.at("vocab").at(i).fail("is not [piece, score]");
      const std::string piece = e[0].get<std::string>();
      const U32 chars = utf8_to_u32(piece, w.path + ": " + w.at("vocab").at(i).key);
      id_to_token.push_back(piece);
      vocab.emplace(piece, int64_t(i));
      pieces.emplace(chars, int64_t(i));
      scores.push_back(e[1].get<double>());
      min_score = std::min(min_score, scores.back());
      max_piece_chars = std::max(max_piece_chars, chars.size());
    }
    if (j.contains("unk_id") && !j["unk_id"].is_null()) {
      if (!j["unk_id"].is_number_integer() || j["unk_id"].get<int64_t>() < 0 || j["unk_id"].get<size_t>() >= list.size())
        w.at("unk_id").fail("is not an id of the vocabulary");
      unk_id = j["unk_id"].get<int64_t>();
    }
    byte_fallback = bool_member(j, w, "byte_fallback", false);
    unk_score = min_score - 10.0;  // tokenizers' K_UNK_PENALTY
  }
  // The best-scoring segmentation (Viterbi over every vocabulary piece starting at every character; a
  // character no one-character piece covers is the unknown piece), unknown runs fused into one.
  void tokenize(const U32& word, std::vector<Token>& out) const override {
    const size_t n = word.size();
    std::vector<double> best(n + 1, -std::numeric_limits<double>::infinity());
    std::vector<std::pair<size_t, int64_t>> back(n + 1, {0, -1});  // (start, id; -1 = unknown)
    best[0] = 0;
    for (size_t s = 0; s < n; ++s) {
      if (best[s] == -std::numeric_limits<double>::infinity()) continue;
      bool single = false;
      U32 sub;
      for (size_t len = 1; len <= max_piece_chars && s + len <= n; ++len) {
        sub.push_back(word[s + len - 1]);
        const auto it = pieces.find(sub);
        if (it == pieces.end()) continue;
        if (len == 1) single = true;
        const double score = best[s] + scores[size_t(it->second)];
        if (score > best[s + len]) {
          best[s + len] = score;
          back[s + len] = {s, it->second};
        }
      }
      if (!single && unk_id) {
        const double score = best[s] + unk_score;
        if (score > best[s + 1]) {
          best[s + 1] = score;
          back[s + 1] = {s, -1};
        }
      }
    }
    if (n > 0 && best[n] == -std::numeric_limits<double>::infinity())
      fail("Unigram: '", u32_to_utf8(word), "' cannot be segmented (no unk_id and characters outside the vocabulary)");
    std::vector<std::pair<U32, int64_t>> path;
    for (size_t e = n; e > 0; e = back[e].first) path.emplace_back(word.substr(back[e].first, e - back[e].first), back[e].second);
    std::reverse(path.begin(), path.end());
    for (size_t i = 0; i < path.size(); ++i) {
      if (path[i].second >= 0) {
        out.push_back({path[i].second, id_to_token[size_t(path[i].second)]});
        continue;
      }
      U32 unknown = path[i].first;  // fuse_unk: a run of unknown characters is one token
      while (i + 1 < path.size() && path[i + 1].second < 0) unknown += path[++i].first;
      if (byte_fallback) {
        std::vector<Token> bytes;
        for (unsigned char b : u32_to_utf8(unknown)) {
          char name[8];
          std::snprintf(name, sizeof name, "<0x%02X>", b);
          if (const auto id = lookup(name)) bytes.push_back({*id, name});
        }
        if (bytes.size() == u32_to_utf8(unknown).size()) {
          out.insert(out.end(), bytes.begin(), bytes.end());
          continue;
        }
      }
      out.push_back({*unk_id, u32_to_utf8(unknown)});
    }
  }
  std::string name() const override { return str("Unigram (", pieces.size(), " pieces)"); }
};

std::unique_ptr<Model> make_model(const Json& j, const Where& w) {
  const std::string type = j.is_object() && j.contains("type") ? type_of(j, w)
                           : j.is_object() && j.contains("merges") ? "BPE"
                           : j.is_object() && j.contains("vocab") && j["vocab"].is_array() ? "Unigram"
                                                                                          : "WordPiece";
  if (type == "WordPiece") return std::make_unique<WordPiece>(j, w);
  if (type == "BPE") return std::make_unique<Bpe>(j, w);
  if (type == "Unigram") return std::make_unique<Unigram>(j, w);
  unsupported(w, type, "WordPiece, BPE, Unigram");
}

// ---- post-processors: where the special tokens go ----

struct TemplatePart {
  bool is_sequence;  // $A / $B, else special tokens
  int which = 0;     // 0 = A, 1 = B
  std::vector<int64_t> ids;
  int64_t type_id = 0;
};
struct Template {
  std::vector<TemplatePart> single, pair;
};

Template make_template(const Json& j, const Where& w) {
  Template t;
  if (j.is_null()) {  // no post-processor: the sequences as they are
    t.single = {{true, 0, {}, 0}};
    t.pair = {{true, 0, {}, 0}, {true, 1, {}, 1}};
    return t;
  }
  const std::string type = type_of(j, w);
  auto token_pair = [&](const char* key) {
    const Json& p = member(j, w, key);
    if (!p.is_array() || p.size() != 2 || !p[0].is_string() || !p[1].is_number_integer())
      w.at(key).fail("is not [token, id]");
    return p[1].get<int64_t>();
  };
  if (type == "BertProcessing") {
    const int64_t cls = token_pair("cls"), sep = token_pair("sep");
    t.single = {{false, 0, {cls}, 0}, {true, 0, {}, 0}, {false, 0, {sep}, 0}};
    t.pair = {{false, 0, {cls}, 0}, {true, 0, {}, 0}, {false, 0, {sep}, 0}, {true, 1, {}, 1}, {false, 0, {sep}, 1}};
  } else if (type == "RobertaProcessing") {
    const int64_t cls = token_pair("cls"), sep = token_pair("sep");
    t.single = {{false, 0, {cls}, 0}, {true, 0, {}, 0}, {false, 0, {sep}, 0}};
    t.pair = {{false, 0, {cls}, 0}, {true, 0, {}, 0}, {false, 0, {sep, sep}, 0}, {true, 1, {}, 0}, {false, 0, {sep}, 0}};
  } else if (type == "TemplateProcessing") {
    const Json& specials = member(j, w, "special_tokens");
    auto parts = [&](const char* key) {
      std::vector<TemplatePart> out;
      const Json& list = member(j, w, key);
      if (!list.is_array()) w.at(key).fail("is not a list");
      for (size_t i = 0; i < list.size(); ++i) {
        const Where at = w.at(key).at(i);
        const Json& e = list[i];
        if (e.is_object() && e.contains("Sequence")) {
          const std::string id = string_member(e["Sequence"], at, "id");
          if (id != "A" && id != "B") at.fail("names sequence '", id, "' (A or B)");
          out.push_back({true, id == "B", {}, e["Sequence"].value("type_id", int64_t(0))});
        } else if (e.is_object() && e.contains("SpecialToken")) {
          const std::string id = string_member(e["SpecialToken"], at, "id");
          if (!specials.contains(id)) at.fail("names special token '", id, "', which special_tokens does not define");
          const Json& ids = member(specials[id], w.at("special_tokens").at(id), "ids");
          TemplatePart part{false, 0, {}, e["SpecialToken"].value("type_id", int64_t(0))};
          for (const Json& v : ids) {
            if (!v.is_number_integer()) w.at("special_tokens").at(id).fail("has a non-integer id");
            part.ids.push_back(v.get<int64_t>());
          }
          out.push_back(std::move(part));
        } else {
          at.fail("is neither a Sequence nor a SpecialToken");
        }
      }
      return out;
    };
    t.single = parts("single");
    t.pair = parts("pair");
  } else if (type == "ByteLevel") {
    return make_template(Json(), w);  // offsets only
  } else if (type == "Sequence") {
    Template result = make_template(Json(), w);
    const Json& list = member(j, w, "processors");
    for (size_t i = 0; i < list.size(); ++i) {
      const Where at = w.at("processors").at(i);
      if (type_of(list[i], at) == "ByteLevel") continue;
      result = make_template(list[i], at);  // the one that places special tokens
    }
    return result;
  } else {
    unsupported(w, type, "TemplateProcessing, BertProcessing, RobertaProcessing, ByteLevel, Sequence");
  }
  return t;
}

size_t special_count(const std::vector<TemplatePart>& parts) {
  size_t n = 0;
  for (const auto& p : parts) n += p.ids.size();
  return n;
}

struct AddedToken {
  U32 content;
  int64_t id;
  bool single_word, lstrip, rstrip, normalized, special;
};

}  // namespace

struct JsonTokenizer::Impl {
  std::string path;
  NormalizerPtr normalizer;
  PreTokenizerPtr pre_tokenizer;
  std::unique_ptr<Model> model;
  Template post;
  std::vector<AddedToken> added;  // longest first, so the first match at a position is the longest
  std::vector<std::string> extra_id_to_token;  // added tokens beyond the model's vocabulary
  int64_t pad_id = 0;
  int64_t model_max_length = std::numeric_limits<int64_t>::max();
  bool token_types = false;

  struct Segment {
    U32 text;
    const AddedToken* token;  // an added token, else text to tokenize
    bool text_start;
  };
  // Splits `text` on the added tokens whose `normalized` flag is `normalized`.
  std::vector<Segment> split_added(const U32& text, bool normalized, bool text_start) const {
    std::vector<Segment> out;
    size_t plain_start = 0, i = 0;
    auto emit_plain = [&](size_t end) {
      if (end > plain_start) out.push_back({text.substr(plain_start, end - plain_start), nullptr, text_start && plain_start == 0});
    };
    while (i < text.size()) {
      const AddedToken* hit = nullptr;
      for (const auto& t : added) {
        if (t.normalized != normalized || t.content.empty() || text.compare(i, t.content.size(), t.content) != 0) continue;
        if (t.single_word && ((i > 0 && is_word_char(text[i - 1])) ||
                              (i + t.content.size() < text.size() && is_word_char(text[i + t.content.size()]))))
          continue;
        hit = &t;
        break;
      }
      if (!hit) {
        ++i;
        continue;
      }
      size_t begin = i, end = i + hit->content.size();
      if (hit->lstrip)
        while (begin > plain_start && is_whitespace(text[begin - 1])) --begin;
      if (hit->rstrip)
        while (end < text.size() && is_whitespace(text[end])) ++end;
      emit_plain(begin);
      out.push_back({hit->content, hit, false});
      plain_start = i = end;
    }
    emit_plain(text.size());
    return out;
  }

  std::vector<Token> encode_one(const std::string& text, const std::string& what) const {
    const U32 raw = utf8_to_u32(text, what);
    std::vector<Token> tokens;
    for (const Segment& seg : split_added(raw, false, true)) {
      if (seg.token) {
        tokens.push_back({seg.token->id, u32_to_utf8(seg.token->content)});
        continue;
      }
      U32 normalized = seg.text;
      if (normalizer) normalizer->apply(normalized);
      for (const Segment& sub : split_added(normalized, true, seg.text_start)) {
        if (sub.token) {
          tokens.push_back({sub.token->id, u32_to_utf8(sub.token->content)});
          continue;
        }
        std::vector<U32> pieces{sub.text};
        if (pre_tokenizer) pre_tokenizer->apply(pieces, sub.text_start);
        for (const U32& p : pieces)
          if (!p.empty()) model->tokenize(p, tokens);
      }
    }
    return tokens;
  }
};

JsonTokenizer::JsonTokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
JsonTokenizer::~JsonTokenizer() = default;

std::unique_ptr<JsonTokenizer> JsonTokenizer::load(const std::string& folder, bool bert_options) {
  const std::string json = join_path(folder, "tokenizer.json"), config = join_path(folder, "tokenizer_config.json");
  if (!file_exists(json)) fail(folder, ": no tokenizer.json (this model's tokenizer is read from that file)");
  return load_files(json, file_exists(config) ? config : "", bert_options);
}

std::unique_ptr<JsonTokenizer> JsonTokenizer::load_files(const std::string& path, const std::string& config_path,
                                                         bool bert_options) {
  const JsonObject file = JsonObject::load(path);
  const Json& j = file.json();
  const Where root{path, ""};
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->model = make_model(member(j, root, "model"), root.at("model"));
  impl->normalizer = make_normalizer(j.value("normalizer", Json()), root.at("normalizer"));
  impl->pre_tokenizer = make_pre_tokenizer(j.value("pre_tokenizer", Json()), root.at("pre_tokenizer"));
  const Json post = j.value("post_processor", Json());
  impl->post = make_template(post, root.at("post_processor"));
  // Token types are a model input where the template gives the second sequence its own type (BERT).
  for (const auto& p : impl->post.pair)
    if (p.type_id != 0) impl->token_types = true;
  if (j.contains("added_tokens") && j["added_tokens"].is_array()) {
    const Json& list = j["added_tokens"];
    for (size_t i = 0; i < list.size(); ++i) {
      const Where w = root.at("added_tokens").at(i);
      const Json& t = list[i];
      AddedToken a{u32_member(t, w, "content"), 0, bool_member(t, w, "single_word", false), bool_member(t, w, "lstrip", false),
                   bool_member(t, w, "rstrip", false), bool_member(t, w, "normalized", false), bool_member(t, w, "special", false)};
      if (!t.contains("id") || !t["id"].is_number_integer() || t["id"].get<int64_t>() < 0) w.fail("has no valid \"id\"");
      a.id = t["id"].get<int64_t>();
      const size_t vocab = impl->model->id_to_token.size();
      if (size_t(a.id) >= vocab) {
        if (impl->extra_id_to_token.size() < size_t(a.id) - vocab + 1) impl->extra_id_to_token.resize(size_t(a.id) - vocab + 1);
        impl->extra_id_to_token[size_t(a.id) - vocab] = u32_to_utf8(a.content);
      }
      impl->added.push_back(std::move(a));
    }
    std::stable_sort(impl->added.begin(), impl->added.end(),
                     [](const AddedToken& a, const AddedToken& b) { return a.content.size() > b.content.size(); });
  }
  // The pad token: the file's padding block, else tokenizer_config.json's pad_token, else a usual name.
  std::optional<std::string> pad_name;
  std::optional<JsonObject> config;
  if (!config_path.empty()) config.emplace(JsonObject::load(config_path));
  if (config) {
    impl->model_max_length = config->get_count("model_max_length", impl->model_max_length, {1, std::numeric_limits<int64_t>::max(), "a token count"});
    const Json& c = config->json();
    if (c.contains("pad_token")) {
      if (c["pad_token"].is_string()) pad_name = c["pad_token"].get<std::string>();
      else if (c["pad_token"].is_object() && c["pad_token"].contains("content")) pad_name = c["pad_token"]["content"].get<std::string>();
    }
  }
  // BertTokenizerFast.__init__ (and MPNet's, Electra's): the config's options replace a BertNormalizer's.
  const std::string cls = config ? config->get_optional_string("tokenizer_class").value_or("") : "";
  for (const char* name : {"MPNetTokenizer", "MPNetTokenizerFast", "ElectraTokenizer", "ElectraTokenizerFast"})
    if (cls == name) bert_options = true;
  if (auto* bert = dynamic_cast<BertNormalizer*>(impl->normalizer.get()); bert && bert_options) {
    bert->lowercase_text = config ? config->get_bool("do_lower_case", true) : true;
    const std::optional<bool> strip = config ? config->get_optional_bool("strip_accents") : std::nullopt;
    bert->strip_accents = strip.value_or(bert->lowercase_text);
    bert->handle_chinese_chars = config ? config->get_bool("tokenize_chinese_chars", true) : true;
  }
  auto id_of = [&](const std::string& name) -> std::optional<int64_t> {
    for (const auto& a : impl->added)
      if (u32_to_utf8(a.content) == name) return a.id;
    return impl->model->lookup(name);
  };
  std::optional<int64_t> pad;
  if (j.contains("padding") && j["padding"].is_object() && j["padding"].contains("pad_id") && j["padding"]["pad_id"].is_number_integer())
    pad = j["padding"]["pad_id"].get<int64_t>();
  if (!pad && pad_name) pad = id_of(*pad_name);
  for (const char* name : {"<pad>", "[PAD]"})
    if (!pad) pad = id_of(name);
  impl->pad_id = pad.value_or(0);
  return std::unique_ptr<JsonTokenizer>(new JsonTokenizer(std::move(impl)));
}

std::vector<std::string> JsonTokenizer::tokenize(const std::string& text) const {
  std::vector<std::string> out;
  for (auto& t : impl_->encode_one(text, "text")) out.push_back(std::move(t.text));
  return out;
}

Encoding JsonTokenizer::encode(const std::string& text, const std::string* text_pair, std::optional<int64_t> max_length) const {
  std::vector<Token> a = impl_->encode_one(text, "text"), b;
  if (text_pair) b = impl_->encode_one(*text_pair, "text pair");
  const auto& parts = text_pair ? impl_->post.pair : impl_->post.single;
  if (max_length) {  // truncation=True: the longest sequence loses tokens first, the specials stay
    const int64_t budget = std::max<int64_t>(0, *max_length - int64_t(special_count(parts)));
    while (int64_t(a.size() + b.size()) > budget) {
      if (b.size() > a.size()) b.pop_back();
      else a.pop_back();
    }
  }
  Encoding e;
  for (const auto& p : parts) {
    if (p.is_sequence) {
      for (const auto& t : p.which ? b : a) {
        e.input_ids.push_back(t.id);
        e.token_type_ids.push_back(p.type_id);
        e.special_tokens_mask.push_back(0);
      }
    } else {
      for (int64_t id : p.ids) {
        e.input_ids.push_back(id);
        e.token_type_ids.push_back(p.type_id);
        e.special_tokens_mask.push_back(1);
      }
    }
  }
  e.attention_mask.assign(e.input_ids.size(), 1);
  return e;
}

std::string JsonTokenizer::id_to_token(int64_t id) const {
  const auto& v = impl_->model->id_to_token;
  if (id >= 0 && size_t(id) < v.size()) return v[size_t(id)];
  const size_t extra = size_t(id) - v.size();
  if (id >= 0 && extra < impl_->extra_id_to_token.size()) return impl_->extra_id_to_token[extra];
  fail(impl_->path, ": id ", id, " is not in the vocabulary");
}
int64_t JsonTokenizer::pad_token_id() const { return impl_->pad_id; }
int64_t JsonTokenizer::model_max_length() const { return impl_->model_max_length; }
std::vector<std::string> JsonTokenizer::model_input_names() const {
  if (impl_->token_types) return {"input_ids", "token_type_ids", "attention_mask"};
  return {"input_ids", "attention_mask"};
}
std::string JsonTokenizer::describe() const {
  std::string s = "tokenizer.json: " + impl_->model->name();
  if (impl_->normalizer) s += ", normalizer " + impl_->normalizer->name();
  if (impl_->pre_tokenizer) s += ", pre-tokenizer " + impl_->pre_tokenizer->name();
  return s;
}

}  // namespace mmx::text
