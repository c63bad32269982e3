// Unicode helpers with Python's semantics (str.isspace, str.lower, unicodedata.category/normalize),
// built on utf8proc.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace mmx::text {

// Decodes UTF-8; invalid input is an error naming the byte offset and `what` (e.g. "text 3").
std::u32string utf8_to_u32(std::string_view utf8, const std::string& what = "text");
std::string u32_to_utf8(std::u32string_view text);
void append_utf8(std::string& out, char32_t c);

// unicodedata.category as two letters ("Lu", "Mn", "Cc", ...).
const char* category(char32_t c);
bool is_python_space(char32_t c);  // str.isspace(), which str.split() splits on
// str.lower() of a single character (full mapping: U+0130 → "i̇"; no final-sigma context).
void append_python_lower(std::u32string& out, char32_t c);
// str.lower() of a whole string: as above, and Σ becomes final ς where a cased letter precedes it and
// none follows (case-ignorable characters skipped), as CPython's Final_Sigma rule does.
std::u32string python_lower(const std::u32string& text);

std::u32string nfc(const std::u32string& text);
std::u32string nfd(const std::u32string& text);
std::u32string nfkc(const std::u32string& text);
std::u32string nfkd(const std::u32string& text);
// Where each extended grapheme cluster begins (Unicode's UAX #29, as the unicode-segmentation crate).
std::vector<size_t> grapheme_starts(const std::u32string& text);

}  // namespace mmx::text
