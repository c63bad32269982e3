#include "plot/font.hpp"

#include <cairo.h>
#include <utf8proc.h>

#include <mutex>

#include "mmx/error.hpp"

namespace mmx::plot {
namespace {

// One scratch context for measuring; metrics are unhinted so they scale exactly with the font size
// and equal what the renderers (which also turn hinting off) advance by.
struct Measurer {
  cairo_surface_t* surface = cairo_image_surface_create(CAIRO_FORMAT_A8, 1, 1);
  cairo_t* cr = cairo_create(surface);
  std::mutex mutex;
  Measurer() {
    cairo_select_font_face(cr, kFontFamily, CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_font_options_t* options = cairo_font_options_create();
    cairo_font_options_set_hint_metrics(options, CAIRO_HINT_METRICS_OFF);
    cairo_font_options_set_hint_style(options, CAIRO_HINT_STYLE_NONE);
    cairo_set_font_options(cr, options);
    cairo_font_options_destroy(options);
    if (cairo_status(cr) != CAIRO_STATUS_SUCCESS) fail("cairo: ", cairo_status_to_string(cairo_status(cr)));
  }
  ~Measurer() {
    cairo_destroy(cr);
    cairo_surface_destroy(surface);
  }
};

Measurer& measurer() {
  static Measurer m;
  return m;
}

size_t next_char(const std::string& s, size_t i) {  // s is valid UTF-8
  ++i;
  while (i < s.size() && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) ++i;
  return i;
}

}  // namespace

double text_width(const std::string& utf8, double size) {
  Measurer& m = measurer();
  std::lock_guard lock(m.mutex);
  cairo_set_font_size(m.cr, size);
  cairo_text_extents_t e;
  cairo_text_extents(m.cr, utf8.c_str(), &e);
  return e.x_advance;
}

FontExtents font_extents(double size) {
  Measurer& m = measurer();
  std::lock_guard lock(m.mutex);
  cairo_set_font_size(m.cr, size);
  cairo_font_extents_t e;
  cairo_font_extents(m.cr, &e);
  return {e.ascent, e.descent};
}

std::string printable_label(const std::string& text) {
  std::string out;
  const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(text.data());
  utf8proc_ssize_t left = static_cast<utf8proc_ssize_t>(text.size());
  while (left > 0) {
    utf8proc_int32_t c;
    const utf8proc_ssize_t n = utf8proc_iterate(p, left, &c);
    if (n <= 0) {  // one bad byte → U+FFFD, then go on
      out += "\xEF\xBF\xBD";
      ++p;
      --left;
      continue;
    }
    const auto category = utf8proc_category(c);
    if (c < 0x20 || c == 0x7F || category == UTF8PROC_CATEGORY_CC) out += ' ';
    else out.append(reinterpret_cast<const char*>(p), static_cast<size_t>(n));
    p += n;
    left -= n;
  }
  return out;
}

std::vector<std::string> wrap_text(const std::string& text, double size, double max_width, bool break_words) {
  std::vector<std::string> words;
  for (size_t i = 0; i < text.size();) {
    const size_t j = text.find(' ', i);
    const std::string w = text.substr(i, j == std::string::npos ? std::string::npos : j - i);
    if (!w.empty()) words.push_back(w);
    if (j == std::string::npos) break;
    i = j + 1;
  }
  std::vector<std::string> lines;
  std::string line;
  for (const auto& word : words) {
    const std::string joined = line.empty() ? word : line + " " + word;
    if (text_width(joined, size) <= max_width) {
      line = joined;
      continue;
    }
    if (!line.empty()) lines.push_back(line);
    line = word;
    if (break_words && text_width(word, size) > max_width) {  // split the word itself
      std::string piece;
      for (size_t i = 0; i < word.size();) {
        const size_t k = next_char(word, i);
        const std::string more = piece + word.substr(i, k - i);
        if (!piece.empty() && text_width(more, size) > max_width) {
          lines.push_back(piece);
          piece = word.substr(i, k - i);
        } else {
          piece = more;
        }
        i = k;
      }
      line = piece;
    }
  }
  if (!line.empty() || lines.empty()) lines.push_back(line);
  return lines;
}

}  // namespace mmx::plot
