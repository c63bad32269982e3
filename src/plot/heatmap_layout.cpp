// Figure layout: each panel is seaborn's heatmap (cells, annotations, colour bar, ticks, labels,
// title) placed inside its grid cell with matplotlib's default sizes (10 pt text, 12 pt title,
// 3.5 pt ticks). Space for labels is measured first and the cells get what is left, so no label
// is clipped; long labels are wrapped, and column labels turn vertical when they do not fit across.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "mmx/error.hpp"
#include "mmx/plot/heatmap_layout.hpp"
#include "plot/font.hpp"

namespace mmx::plot {
namespace {

const Rgb kBlack{0, 0, 0};  // ticks and every text but the annotations

struct Sizes {  // pixels at the figure's dpi
  double px_per_pt;
  double text, title, tick_len, tick_pad, label_pad, title_pad, margin, tick_width;
  explicit Sizes(double dpi)
      : px_per_pt(dpi / 72),
        text(10 * px_per_pt),
        title(12 * px_per_pt),
        tick_len(3.5 * px_per_pt),
        tick_pad(3.5 * px_per_pt),
        label_pad(4 * px_per_pt),
        title_pad(6 * px_per_pt),
        margin(10.8 * px_per_pt),  // matplotlib's tight_layout pad: 1.08 × the font size
        tick_width(0.8 * px_per_pt) {}
};

double line_height(double size) {
  const FontExtents e = font_extents(size);
  return e.ascent + e.descent;
}

double widest(const std::vector<std::string>& lines, double size) {
  double w = 0;
  for (const auto& l : lines) w = std::max(w, text_width(l, size));
  return w;
}

// Horizontal text with its left end at x and the middle of its line box at y_center.
TextItem horizontal(const std::string& text, double x, double y_center, double size, Rgb color, TextRole role) {
  const FontExtents e = font_extents(size);
  const double w = text_width(text, size);
  const double baseline = y_center + (e.ascent - e.descent) / 2;
  return {text, x, baseline, size, false, color, role, {x, baseline - e.ascent, x + w, baseline + e.descent}};
}

// Vertical text (reads upwards) with its top end at y_top and the middle of its line box at x_center.
TextItem vertical(const std::string& text, double x_center, double y_top, double size, Rgb color, TextRole role) {
  const FontExtents e = font_extents(size);
  const double w = text_width(text, size);
  const double ox = x_center + (e.ascent - e.descent) / 2, oy = y_top + w;
  return {text, ox, oy, size, true, color, role, {ox - e.ascent, y_top, ox + e.descent, oy}};
}

// matplotlib's MaxNLocator steps: the smallest "nice" step giving at most `max_ticks` ticks in range.
std::vector<double> nice_ticks(double lo, double hi, int max_ticks, int* decimals) {
  *decimals = 0;
  if (!(hi > lo)) {
    *decimals = 2;
    return {lo};
  }
  const double span = hi - lo;
  double step = 0;
  const double base = std::pow(10.0, std::floor(std::log10(span / std::max(1, max_ticks))));
  for (double mult : {1.0, 2.0, 2.5, 5.0, 10.0, 20.0, 25.0, 50.0, 100.0}) {
    step = mult * base;
    const double first = std::ceil(lo / step - 1e-9) * step;
    if (std::floor((hi - first) / step + 1e-9) + 1 <= max_ticks) break;
  }
  std::vector<double> ticks;
  for (double v = std::ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step)
    ticks.push_back(std::abs(v) < step * 1e-9 ? 0.0 : v);
  // Enough decimals to tell the ticks apart (2.5 × 10^k needs one more than 10^k).
  const double mant = step / std::pow(10.0, std::floor(std::log10(step) + 1e-12));
  *decimals = std::max(0, static_cast<int>(-std::floor(std::log10(step) + 1e-12)) + (std::abs(mant - 2.5) < 1e-6 ? 1 : 0));
  return ticks;
}

std::string tick_text(double v, int decimals) {
  char buf[64];
  if (std::abs(v) >= 1e6 || (v != 0 && decimals > 6)) std::snprintf(buf, sizeof buf, "%.3g", v);
  else std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

struct Labels {
  std::vector<std::vector<std::string>> lines;  // per label, its wrapped lines
  bool vertical = false;
  double size = 0;    // font size (px)
  double extent = 0;  // the space the labels take away from the cells (px)
};

// Wraps every label to `length` at the largest font size (10 pt down to 5 pt) at which each label's
// block of lines stays within `thickness`; false if even 5 pt does not fit.
bool fit_labels(const std::vector<std::string>& labels, double length, double thickness, const Sizes& sz, Labels& out) {
  for (double size = sz.text; size >= 5 * sz.px_per_pt - 1e-9; size *= 0.9) {
    out.lines.clear();
    out.size = size;
    size_t most = 1;
    for (const auto& l : labels) {
      out.lines.push_back(wrap_text(l, size, length, true));
      most = std::max(most, out.lines.back().size());
    }
    if (most * line_height(size) <= thickness) return true;
  }
  return false;
}

std::vector<std::string> label_strings(const std::vector<std::string>& given, int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back(given.empty() ? std::to_string(i) : printable_label(given[size_t(i)]));
  return out;
}

void lay_out_panel(const Heatmap& h, int panel, const Box& area, const Sizes& sz, Scene& scene) {
  const double lh = line_height(sz.text), th = line_height(sz.title);
  Box inner{area.x0 + sz.margin, area.y0 + sz.margin, area.x1 - sz.margin, area.y1 - sz.margin};
  const double iw = inner.x1 - inner.x0, ih = inner.y1 - inner.y0;
  auto too_small = [&](const char* what) {
    fail("the figure is too small for panel ", panel + 1, " (", h.rows, "×", h.cols, ", ", what,
         "): give it a larger size or a lower dpi");
  };
  if (iw < 40 || ih < 40) too_small("no room at all");

  // Value range and colour-bar ticks.
  double lo = INFINITY, hi = -INFINITY;
  for (double v : h.values)
    if (!std::isnan(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  if (h.vmin) lo = *h.vmin;
  if (h.vmax) hi = *h.vmax;
  if (!std::isfinite(lo) || !std::isfinite(hi)) lo = 0, hi = 1;  // all NaN: nothing to colour
  int decimals = 0;
  const int max_ticks = std::clamp(static_cast<int>(ih * 0.7 / (3.5 * lh)), 2, 9);
  const std::vector<double> ticks = nice_ticks(lo, hi, max_ticks, &decimals);
  std::vector<std::string> tick_texts;
  for (double t : ticks) tick_texts.push_back(tick_text(t, decimals));

  // Title on top, wrapped to the panel.
  const auto title = wrap_text(printable_label(h.title), sz.title, iw, true);
  const double top = h.title.empty() ? 0 : title.size() * th + sz.title_pad;
  // Right: gap, colour bar, its ticks and labels.
  const double cbar_w = std::max(6 * sz.px_per_pt, 0.035 * iw), cbar_gap = 1.2 * cbar_w;
  const double right = cbar_gap + cbar_w + sz.tick_len + sz.tick_pad + widest(tick_texts, sz.text);
  // Left: the y-axis label (vertical) and the row labels (horizontal, wrapped to 30 % of the panel).
  const auto ylabel = wrap_text(printable_label(h.y_label), sz.text, ih * 0.9, true);
  const double ylabel_w = h.y_label.empty() ? 0 : ylabel.size() * lh + sz.label_pad;
  Labels rows;
  if (!fit_labels(label_strings(h.row_labels, h.rows), 0.3 * iw, 0.9 * ih, sz, rows)) too_small("row labels too long");
  for (const auto& l : rows.lines) rows.extent = std::max(rows.extent, widest(l, rows.size));
  const double left = ylabel_w + rows.extent + sz.tick_pad + sz.tick_len;
  const double hw = iw - left - right;
  if (hw < h.cols * 2.0 || hw < 20) too_small("no room left for the cells across");
  const double cell_w = hw / h.cols;

  // Bottom: column labels across if they fit (wrapped onto up to 3 lines), else vertical.
  Labels cols;
  cols.size = sz.text;
  const auto col_strings = label_strings(h.col_labels, h.cols);
  size_t max_lines = 1;
  bool across = true;
  for (const auto& l : col_strings) {
    cols.lines.push_back(wrap_text(l, sz.text, 0.92 * cell_w, false));
    max_lines = std::max(max_lines, cols.lines.back().size());
    if (widest(cols.lines.back(), sz.text) > 0.92 * cell_w) across = false;
  }
  if (across && max_lines <= 3) {
    cols.extent = max_lines * lh;
  } else {
    cols.vertical = true;
    if (!fit_labels(col_strings, 0.3 * ih, 0.9 * iw, sz, cols)) too_small("column labels too long");
    for (const auto& l : cols.lines) cols.extent = std::max(cols.extent, widest(l, cols.size));
  }
  const auto xlabel = wrap_text(printable_label(h.x_label), sz.text, iw, true);
  const double xlabel_h = h.x_label.empty() ? 0 : xlabel.size() * lh + sz.label_pad;
  const double bottom = sz.tick_len + sz.tick_pad + cols.extent + xlabel_h;
  const double hh = ih - top - bottom;
  if (hh < h.rows * 2.0 || hh < 20) too_small("no room left for the cells down");
  const double cell_h = hh / h.rows;

  const Box heat{inner.x0 + left, inner.y0 + top, inner.x0 + left + hw, inner.y0 + top + hh};
  scene.heatmap_areas.push_back(heat);
  auto col_edge = [&](int j) { return std::round(heat.x0 + j * cell_w); };
  auto row_edge = [&](int i) { return std::round(heat.y0 + i * cell_h); };

  // Cells, coloured as matplotlib's Normalize + Colormap do (vmin == vmax maps everything to 0).
  const std::array<Rgb, 256>& table = colormap_table(h.cmap);
  std::vector<Rgb> fills(h.values.size());
  for (int i = 0; i < h.rows; ++i)
    for (int j = 0; j < h.cols; ++j) {
      const double v = h.values[size_t(i) * size_t(h.cols) + size_t(j)];
      if (std::isnan(v)) continue;
      const double t = hi > lo ? (v - lo) / (hi - lo) : 0.0;
      const Rgb c = colormap(table, t);
      fills[size_t(i) * size_t(h.cols) + size_t(j)] = c;
      const Box b{col_edge(j), row_edge(i), col_edge(j + 1), row_edge(i + 1)};
      scene.rects.push_back({b, c});
      scene.cells.push_back({panel, i, j, b, c});
    }

  // Annotations: 10 pt, shrunk down to 5 pt where cells are small, left out if even that does not fit.
  if (h.annotate) {
    std::vector<std::string> texts(h.values.size());
    for (size_t k = 0; k < texts.size(); ++k)
      if (!std::isnan(h.values[k])) texts[k] = format_number(h.values[k], h.fmt);
    double size = sz.text;
    for (; size >= 5 * sz.px_per_pt; size *= 0.9) {
      double w = 0;
      for (const auto& t : texts) w = std::max(w, text_width(t, size));
      if (w <= 0.9 * cell_w && line_height(size) <= 0.9 * cell_h) break;
    }
    if (size >= 5 * sz.px_per_pt) {
      for (int i = 0; i < h.rows; ++i)
        for (int j = 0; j < h.cols; ++j) {
          const size_t k = size_t(i) * size_t(h.cols) + size_t(j);
          if (std::isnan(h.values[k])) continue;
          const double cx = (col_edge(j) + col_edge(j + 1)) / 2, cy = (row_edge(i) + row_edge(i + 1)) / 2;
          const double w = text_width(texts[k], size);
          scene.texts.push_back(horizontal(texts[k], cx - w / 2, cy, size, annotation_color(fills[k]), TextRole::Annotation));
        }
    }
  }

  // Row labels, right-aligned left of the ticks; every k-th when rows are thinner than a label.
  // A block of lines is centred on its row, moved inwards where it would leave the panel.
  auto block_start = [](double center, double extent, double lo, double hi) {
    return std::clamp(center - extent / 2, lo, std::max(lo, hi - extent));
  };
  const double rlh = line_height(rows.size);
  double tallest = 0;
  for (const auto& l : rows.lines) tallest = std::max(tallest, l.size() * rlh);
  const int row_step = std::max(1, static_cast<int>(std::ceil(tallest / cell_h - 1e-9)));
  for (int i = 0; i < h.rows; i += row_step) {
    const double cy = (row_edge(i) + row_edge(i + 1)) / 2;
    scene.lines.push_back({heat.x0 - sz.tick_len, cy, heat.x0, cy, sz.tick_width, kBlack});
    const auto& lines = rows.lines[size_t(i)];
    const double y0 = block_start(cy, lines.size() * rlh, inner.y0, inner.y1);
    for (size_t k = 0; k < lines.size(); ++k) {
      const double w = text_width(lines[k], rows.size);
      scene.texts.push_back(horizontal(lines[k], heat.x0 - sz.tick_len - sz.tick_pad - w, y0 + (k + 0.5) * rlh,
                                       rows.size, kBlack, TextRole::RowLabel));
    }
  }
  // Column labels below the ticks.
  const double clh = line_height(cols.size);
  double thickest = 0;
  for (const auto& l : cols.lines) thickest = std::max(thickest, l.size() * clh);
  const int col_step = cols.vertical ? std::max(1, static_cast<int>(std::ceil(thickest / cell_w - 1e-9))) : 1;
  const double label_top = heat.y1 + sz.tick_len + sz.tick_pad;
  for (int j = 0; j < h.cols; j += col_step) {
    const double cx = (col_edge(j) + col_edge(j + 1)) / 2;
    scene.lines.push_back({cx, heat.y1, cx, heat.y1 + sz.tick_len, sz.tick_width, kBlack});
    const auto& lines = cols.lines[size_t(j)];
    for (size_t k = 0; k < lines.size(); ++k) {
      if (cols.vertical) {
        const double x0 = block_start(cx, lines.size() * clh, inner.x0, inner.x1);
        scene.texts.push_back(vertical(lines[k], x0 + (k + 0.5) * clh, label_top, cols.size, kBlack, TextRole::ColLabel));
      } else {
        const double w = text_width(lines[k], sz.text);
        scene.texts.push_back(
            horizontal(lines[k], cx - w / 2, label_top + (k + 0.5) * lh, sz.text, kBlack, TextRole::ColLabel));
      }
    }
  }
  // Axis labels and title.
  const double xlabel_top = label_top + cols.extent + sz.label_pad;
  for (size_t k = 0; k < xlabel.size() && !h.x_label.empty(); ++k) {
    const double w = text_width(xlabel[k], sz.text);
    const double x = std::clamp((heat.x0 + heat.x1) / 2 - w / 2, inner.x0, std::max(inner.x0, inner.x1 - w));
    scene.texts.push_back(horizontal(xlabel[k], x, xlabel_top + (k + 0.5) * lh, sz.text, kBlack, TextRole::AxisLabel));
  }
  const double ylabel_right = heat.x0 - sz.tick_len - sz.tick_pad - rows.extent - sz.label_pad;
  for (size_t k = 0; k < ylabel.size() && !h.y_label.empty(); ++k) {
    const double w = text_width(ylabel[k], sz.text);
    const double x = ylabel_right - (ylabel.size() - k - 0.5) * lh;
    const double y_top = std::clamp((heat.y0 + heat.y1) / 2 - w / 2, inner.y0, std::max(inner.y0, inner.y1 - w));
    scene.texts.push_back(vertical(ylabel[k], x, y_top, sz.text, kBlack, TextRole::AxisLabel));
  }
  for (size_t k = 0; k < title.size() && !h.title.empty(); ++k) {
    const double w = text_width(title[k], sz.title);
    const double x = std::clamp((heat.x0 + heat.x1) / 2 - w / 2, inner.x0, std::max(inner.x0, inner.x1 - w));
    scene.texts.push_back(horizontal(title[k], x, inner.y0 + (k + 0.5) * th, sz.title, kBlack, TextRole::Title));
  }

  // Colour bar: the 256 table entries bottom to top, with ticks on its right.
  const double bx0 = std::round(heat.x1 + cbar_gap), bx1 = std::round(heat.x1 + cbar_gap + cbar_w);
  for (int e = 0; e < 256; ++e) {
    const double y0 = std::round(heat.y1 - (e + 1) * hh / 256), y1 = std::round(heat.y1 - e * hh / 256);
    if (y1 > y0) scene.rects.push_back({{bx0, y0, bx1, y1}, table[size_t(e)]});
  }
  for (size_t k = 0; k < ticks.size(); ++k) {
    const double y = hi > lo ? heat.y1 - (ticks[k] - lo) / (hi - lo) * hh : (heat.y0 + heat.y1) / 2;
    scene.lines.push_back({bx1, y, bx1 + sz.tick_len, y, sz.tick_width, kBlack});
    scene.texts.push_back(
        horizontal(tick_texts[k], bx1 + sz.tick_len + sz.tick_pad, y, sz.text, kBlack, TextRole::ColorbarTick));
  }
}

void check_panel(const Heatmap& h, size_t index) {
  const std::string where = "heatmap " + std::to_string(index + 1);
  if (h.rows <= 0 || h.cols <= 0) fail(where, ": the matrix is empty (", h.rows, "×", h.cols, ")");
  if (h.values.size() != size_t(h.rows) * size_t(h.cols))
    fail(where, ": ", h.values.size(), " values for a ", h.rows, "×", h.cols, " matrix");
  if (!h.row_labels.empty() && h.row_labels.size() != size_t(h.rows))
    fail(where, ": ", h.row_labels.size(), " row labels for ", h.rows, " rows");
  if (!h.col_labels.empty() && h.col_labels.size() != size_t(h.cols))
    fail(where, ": ", h.col_labels.size(), " column labels for ", h.cols, " columns");
  if (h.vmin && h.vmax && !(*h.vmax >= *h.vmin)) fail(where, ": vmax ", *h.vmax, " is below vmin ", *h.vmin);
  colormap_table(h.cmap);      // a usage error for a name mmx does not draw
  format_number(0.0, h.fmt);   // ... and for a format it does not write
}

}  // namespace

std::pair<double, double> default_panel_size(int rows, int cols) {
  return {std::clamp(2.6 + 0.85 * cols, 6.0, 40.0), std::clamp(2.6 + 0.85 * rows, 6.0, 40.0)};
}

Scene layout_figure(const Figure& figure) {
  if (figure.panels.empty()) fail("a figure needs at least one heatmap");
  if (figure.grid_rows <= 0 || figure.grid_cols <= 0 ||
      figure.panels.size() > size_t(figure.grid_rows) * size_t(figure.grid_cols))
    fail("a ", figure.grid_rows, "×", figure.grid_cols, " grid cannot hold ", figure.panels.size(), " heatmaps");
  if (!(figure.dpi >= 10 && figure.dpi <= 1200)) fail("dpi ", figure.dpi, " is outside 10…1200");
  if (!(figure.width_in > 0 && figure.height_in > 0) || figure.width_in * figure.dpi > 20000 ||
      figure.height_in * figure.dpi > 20000)
    fail("figure size ", figure.width_in, "×", figure.height_in, " in at ", figure.dpi,
         " dpi is not positive or above 20000 pixels a side");
  for (size_t i = 0; i < figure.panels.size(); ++i) check_panel(figure.panels[i], i);
  Scene scene;
  scene.dpi = figure.dpi;
  scene.width = static_cast<int>(std::round(figure.width_in * figure.dpi));
  scene.height = static_cast<int>(std::round(figure.height_in * figure.dpi));
  const Sizes sz(figure.dpi);
  const double pw = double(scene.width) / figure.grid_cols, ph = double(scene.height) / figure.grid_rows;
  for (size_t i = 0; i < figure.panels.size(); ++i) {
    const int r = static_cast<int>(i) / figure.grid_cols, c = static_cast<int>(i) % figure.grid_cols;
    lay_out_panel(figure.panels[i], static_cast<int>(i), {c * pw, r * ph, (c + 1) * pw, (r + 1) * ph}, sz, scene);
  }
  return scene;
}

}  // namespace mmx::plot
