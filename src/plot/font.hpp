// Text measurement for the layout, through Cairo's font machinery, so the PNG, PDF and SVG outputs
// share one geometry. The family is matplotlib's default, DejaVu Sans (fonts-dejavu-core).
#pragma once
#include <string>
#include <vector>

namespace mmx::plot {

inline constexpr const char* kFontFamily = "DejaVu Sans";

struct FontExtents {
  double ascent, descent;  // pixels above and below the baseline
};

double text_width(const std::string& utf8, double size);  // advance width, pixels
FontExtents font_extents(double size);

// A label made safe to draw: invalid UTF-8 bytes become U+FFFD, control characters spaces.
std::string printable_label(const std::string& text);

// Greedy word wrap to `max_width`; a word wider than that is broken between characters when
// `break_words`, else left whole on its own (too wide) line.
std::vector<std::string> wrap_text(const std::string& text, double size, double max_width, bool break_words);

}  // namespace mmx::plot
