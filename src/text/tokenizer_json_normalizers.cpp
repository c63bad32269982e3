// tokenizer.json normalizers: Bert, Lowercase, NFC/NFD/NFKC/NFKD, StripAccents, Strip, Replace, Prepend,
// Precompiled (SentencePiece's char map) and Sequence.
#include <string_view>

#include "text/tokenizer_json_components.hpp"

namespace mmx::text::tokenizer_json {
namespace {

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
    if (type == "Lowercase")
      s = lowercase(s);
    else if (type == "NFC")
      s = nfc(s);
    else if (type == "NFD")
      s = nfd(s);
    else if (type == "NFKC")
      s = nfkc(s);
    else if (type == "NFKD")
      s = nfkd(s);
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
  Strip(const Json& j, const Where& w)
      : left(bool_member(j, w, "strip_left", true)), right(bool_member(j, w, "strip_right", true)) {}
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
  Replace(const Json& j, const Where& w)
      : pattern(member(j, w, "pattern"), w.at("pattern")), content(u32_member(j, w, "content")) {}
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
      if (ch >= 'A' && ch <= 'Z')
        v = ch - 'A';
      else if (ch >= 'a' && ch <= 'z')
        v = ch - 'a' + 26;
      else if (ch >= '0' && ch <= '9')
        v = ch - '0' + 52;
      else if (ch == '+')
        v = 62;
      else if (ch == '/')
        v = 63;
      else if (ch == '=')
        break;
      else
        w.fail("is not base64 (byte ", int(static_cast<unsigned char>(ch)), ")");
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

}  // namespace

bool set_bert_options(Normalizer& normalizer, bool lowercase, std::optional<bool> strip_accents, bool chinese_chars) {
  auto* bert = dynamic_cast<BertNormalizer*>(&normalizer);
  if (!bert) return false;
  bert->lowercase_text = lowercase;
  bert->strip_accents = strip_accents.value_or(lowercase);
  bert->handle_chinese_chars = chinese_chars;
  return true;
}

NormalizerPtr make_normalizer(const Json& j, const Where& w) {
  if (j.is_null()) return nullptr;
  const std::string type = type_of(j, w);
  if (type == "BertNormalizer") return std::make_unique<BertNormalizer>(j, w);
  if (type == "Lowercase" || type == "NFC" || type == "NFD" || type == "NFKC" || type == "NFKD" ||
      type == "StripAccents")
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
  unsupported(
      w, type,
      "BertNormalizer, Lowercase, NFC, NFD, NFKC, NFKD, StripAccents, Strip, Replace, Prepend, Precompiled, Sequence");
}

}  // namespace mmx::text::tokenizer_json
