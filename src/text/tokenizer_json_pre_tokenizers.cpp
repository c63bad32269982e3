// tokenizer.json pre-tokenizers: Bert, Whitespace, WhitespaceSplit, Punctuation, Digits, CharDelimiterSplit,
// Metaspace, ByteLevel, Split and Sequence.
#include <algorithm>

#include "text/tokenizer_json_components.hpp"

namespace mmx::text::tokenizer_json {
namespace {

struct CharSplit : PreTokenizer {  // Bert, Whitespace, WhitespaceSplit, Punctuation, Digits, CharDelimiterSplit
  std::string type;
  Behavior behavior = Behavior::Removed;
  bool individual_digits = false;
  char32_t delimiter = 0;
  std::shared_ptr<Regex> words;  // Whitespace's \w+|[^\w\s]+
  CharSplit(std::string t, const Json& j, const Where& w) : type(std::move(t)) {
    if (type == "Punctuation")
      behavior = j.contains("behavior") ? behavior_from(j["behavior"], w.at("behavior")) : Behavior::Isolated;
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
        for (const U32& word : words)
          split(word, spans_of(word, char_matches(word, is_punctuation)), Behavior::Isolated, false, out);
      } else if (type == "WhitespaceSplit") {
        split(p, spans_of(p, char_matches(p, is_whitespace)), Behavior::Removed, false, out);
      } else if (type == "Whitespace") {
        split(p, spans_of(p, words->find_all(p)), Behavior::Removed, true, out);
      } else if (type == "Punctuation") {
        split(p, spans_of(p, char_matches(p, is_punctuation)), behavior, false, out);
      } else if (type == "Digits") {
        split(p, spans_of(p, char_matches(p, is_numeric)),
              individual_digits ? Behavior::Isolated : Behavior::Contiguous, false, out);
      } else {  // CharDelimiterSplit
        split(p, spans_of(p, char_matches(p, [&](char32_t c) { return c == delimiter; })), Behavior::Removed, false,
              out);
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
      if (s == "always")
        prepend = Prepend::Always;
      else if (s == "first")
        prepend = Prepend::First;
      else if (s == "never")
        prepend = Prepend::Never;
      else
        w.at("prepend_scheme").fail("'", s, "' is not always, first or never");
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
      if (split_pieces)
        split(p, spans_of(p, char_matches(p, [&](char32_t c) { return c == replacement; })), Behavior::MergedWithNext,
              false, out);
      else if (!p.empty())
        out.push_back(std::move(p));
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
      gpt2 = std::make_shared<Regex>(
          U"'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+", w);
  }
  void apply(std::vector<U32>& pieces, bool) const override {
    split_each(pieces, [&](const U32& piece, std::vector<U32>& out) {
      U32 p = piece;
      if (add_prefix_space && (p.empty() || p[0] != U' ')) p.insert(p.begin(), U' ');
      std::vector<U32> parts;
      if (use_regex)
        split(p, spans_of(p, gpt2->find_all(p)), Behavior::Isolated, false, parts);
      else if (!p.empty())
        parts.push_back(p);
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
    split_each(pieces, [&](const U32& p, std::vector<U32>& out) {
      split(p, spans_of(p, pattern.find_all(p)), behavior, invert, out);
    });
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

}  // namespace

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
  unsupported(
      w, type,
      "BertPreTokenizer, Whitespace, WhitespaceSplit, Punctuation, Digits, CharDelimiterSplit, Metaspace, ByteLevel, "
      "Split, Sequence");
}

}  // namespace mmx::text::tokenizer_json
