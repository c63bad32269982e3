#include "text/unicode.hpp"

#include <utf8proc.h>

#include <cstdlib>

#include "mmx/files.hpp"
#include "mmx/error.hpp"

namespace mmx::text {

std::u32string utf8_to_u32(std::string_view s, const std::string& what) {
  const size_t bad = find_invalid_utf8(s);
  if (bad != std::string_view::npos)
    fail(what, ": invalid UTF-8 at byte ", bad, " (byte value 0x", std::hex,
         static_cast<int>(static_cast<unsigned char>(s[bad])), ")");
  std::u32string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    utf8proc_int32_t cp;
    const auto n = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(s.data() + i),
                                    static_cast<utf8proc_ssize_t>(s.size() - i), &cp);
    out.push_back(static_cast<char32_t>(cp));
    i += static_cast<size_t>(n);
  }
  return out;
}

void append_utf8(std::string& out, char32_t c) {
  utf8proc_uint8_t buf[4];
  const auto n = utf8proc_encode_char(static_cast<utf8proc_int32_t>(c), buf);
  out.append(reinterpret_cast<const char*>(buf), static_cast<size_t>(n));
}

std::string u32_to_utf8(std::u32string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char32_t c : text) append_utf8(out, c);
  return out;
}

const char* category(char32_t c) { return utf8proc_category_string(static_cast<utf8proc_int32_t>(c)); }

bool is_python_space(char32_t c) {
  // CPython's _PyUnicode_IsWhitespace: bidirectional class WS/B/S or category Zs.
  switch (c) {
    case 0x09: case 0x0a: case 0x0b: case 0x0c: case 0x0d: case 0x1c: case 0x1d: case 0x1e: case 0x1f:
    case 0x20: case 0x85: case 0xa0: case 0x1680: case 0x2028: case 0x2029: case 0x202f: case 0x205f: case 0x3000:
      return true;
    default:
      return c >= 0x2000 && c <= 0x200a;
  }
}

void append_python_lower(std::u32string& out, char32_t c) {
  if (c == 0x130) {  // the one unconditional multi-character lowercase mapping (SpecialCasing.txt)
    out.push_back(U'i');
    out.push_back(0x307);
    return;
  }
  out.push_back(static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c))));
}

namespace {
bool is_cased(char32_t c) {
  const char* cat = category(c);
  return cat[0] == 'L' && (cat[1] == 'u' || cat[1] == 'l' || cat[1] == 't');
}
bool is_case_ignorable(char32_t c) {
  const char* cat = category(c);
  if ((cat[0] == 'M' && (cat[1] == 'n' || cat[1] == 'e')) || (cat[0] == 'C' && cat[1] == 'f') ||
      (cat[0] == 'L' && cat[1] == 'm') || (cat[0] == 'S' && cat[1] == 'k'))
    return true;
  switch (c) {  // Word_Break MidLetter, MidNumLet, Single_Quote
    case U'\'': case U'.': case U':': case 0xB7: case 0x387: case 0x5F4: case 0x2018: case 0x2019: case 0x2024:
    case 0x2027: case 0xFE13: case 0xFE52: case 0xFE55: case 0xFF07: case 0xFF0E: case 0xFF1A:
      return true;
    default:
      return false;
  }
}
}  // namespace

std::u32string python_lower(const std::u32string& text) {
  std::u32string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == 0x3A3) {
      size_t j = i;
      bool before = false, after = false;
      while (j > 0 && is_case_ignorable(text[j - 1])) --j;
      before = j > 0 && is_cased(text[j - 1]);
      size_t k = i + 1;
      while (k < text.size() && is_case_ignorable(text[k])) ++k;
      after = k < text.size() && is_cased(text[k]);
      out.push_back(before && !after ? 0x3C2 : 0x3C3);
      continue;
    }
    append_python_lower(out, text[i]);
  }
  return out;
}

static std::u32string normalize(const std::u32string& text, utf8proc_option_t options) {
  const std::string utf8 = u32_to_utf8(text);
  utf8proc_uint8_t* result = nullptr;
  const auto n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(utf8.data()),
                              static_cast<utf8proc_ssize_t>(utf8.size()), &result, options);
  if (n < 0) fail("Unicode normalisation failed: ", utf8proc_errmsg(n));
  std::u32string out = utf8_to_u32(std::string_view(reinterpret_cast<char*>(result), static_cast<size_t>(n)));
  std::free(result);
  return out;
}

std::u32string nfc(const std::u32string& text) {
  return normalize(text, static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
}
std::u32string nfd(const std::u32string& text) {
  return normalize(text, static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_DECOMPOSE));
}

std::u32string nfkc(const std::u32string& text) {
  return normalize(text, static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT));
}
std::u32string nfkd(const std::u32string& text) {
  return normalize(text, static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT));
}

std::vector<size_t> grapheme_starts(const std::u32string& text) {
  std::vector<size_t> starts;
  utf8proc_int32_t state = 0;
  for (size_t i = 0; i < text.size(); ++i)
    if (i == 0 || utf8proc_grapheme_break_stateful(static_cast<utf8proc_int32_t>(text[i - 1]),
                                                   static_cast<utf8proc_int32_t>(text[i]), &state))
      starts.push_back(i);
  return starts;
}

}  // namespace mmx::text
