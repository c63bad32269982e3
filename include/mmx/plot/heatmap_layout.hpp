// Annotated heatmaps composed into a figure grid, laid out as seaborn and matplotlib place them
// (src/plot/heatmap_layout.cpp): what the renderers draw and what tests inspect.
#pragma once
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "mmx/plot/colormap.hpp"

namespace mmx::plot {

struct Heatmap {
  int rows = 0, cols = 0;
  std::vector<double> values;  // rows × cols, row-major; NaN cells are left blank
  std::vector<std::string> row_labels, col_labels;  // empty: numbered 0, 1, …
  std::string title, x_label, y_label;              // x = columns, y = rows
  bool annotate = true;
  std::string fmt = ".2g";       // the annotations' format (seaborn's fmt=, format_number)
  std::string cmap = "coolwarm";  // the colour table (colormap_table)
  std::optional<double> vmin, vmax;  // default: the data's range
};

struct Figure {
  int grid_rows = 1, grid_cols = 1;
  std::vector<Heatmap> panels;  // row-major over the grid; may be fewer than grid_rows × grid_cols
  double width_in = 6, height_in = 6;
  double dpi = 100;
};

// A default size (inches) for one panel showing a rows × cols matrix: 6 × 6 for the lab's 4 × 4,
// growing with the matrix so cells and labels keep a readable size.
std::pair<double, double> default_panel_size(int rows, int cols);

// ----- the laid-out figure (what the renderers draw; tests inspect it) -----
enum class TextRole { Title, AxisLabel, RowLabel, ColLabel, Annotation, ColorbarTick };
struct Box {
  double x0 = 0, y0 = 0, x1 = 0, y1 = 0;
};
struct TextItem {
  std::string text;   // one line, valid UTF-8
  double x = 0, y = 0;  // the baseline origin, pixels
  double size = 10;     // font size, pixels
  bool vertical = false;  // rotated 90° counter-clockwise (reads upwards)
  Rgb color;
  TextRole role = TextRole::Title;
  Box box;  // the area it covers (advance width × font ascent + descent)
};
struct RectItem {
  Box box;
  Rgb fill;
};
struct LineItem {
  double x0, y0, x1, y1, width;
  Rgb color;
};
struct CellItem {  // where each matrix entry was drawn
  int panel, row, col;
  Box box;
  Rgb fill;
};
struct Scene {
  int width = 0, height = 0;  // pixels
  double dpi = 100;
  std::vector<RectItem> rects;  // drawn first (cells, colour bars)
  std::vector<LineItem> lines;  // tick marks
  std::vector<TextItem> texts;  // drawn last
  std::vector<CellItem> cells;
  std::vector<Box> heatmap_areas;  // one per panel
};

// Lays out every panel: labels wrapped or rotated so none is clipped or overlaps the cells.
// Errors (mmx::Error) for empty matrices, label counts that do not match, sizes that are not positive.
Scene layout_figure(const Figure& figure);

}  // namespace mmx::plot
