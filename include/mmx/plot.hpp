// Annotated heatmaps (seaborn's `heatmap(annot=True, cmap='coolwarm')`) composed into a figure grid,
// written as PNG, SVG or PDF by the file extension.
#pragma once
#include <array>
#include <optional>
#include <string>
#include <vector>

namespace mmx::plot {

struct Rgb {
  double r = 0, g = 0, b = 0;  // 0..1
};

// matplotlib's `coolwarm`: the 256-entry table (Moreland's diverging map sampled at 33 points, then
// interpolated linearly, as matplotlib's LinearSegmentedColormap does).
const std::array<Rgb, 256>& coolwarm_table();
// A value in [0, 1] → its table entry, the way a matplotlib Colormap indexes: floor(t × 256), clamped.
Rgb coolwarm(double t);

// Python's format(value, ".2g"): seaborn's default annotation (0.76, 0.0048, 3.2e-10, 1e+02).
std::string format_g2(double value);
// seaborn's annotation colour: dark grey (".15") on light cells, white on dark ones (luminance > 0.408).
Rgb annotation_color(const Rgb& cell);

struct Heatmap {
  int rows = 0, cols = 0;
  std::vector<double> values;  // rows × cols, row-major; NaN cells are left blank
  std::vector<std::string> row_labels, col_labels;  // empty: numbered 0, 1, …
  std::string title, x_label, y_label;              // x = columns, y = rows
  bool annotate = true;
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

// Writes the figure to `path` (.png, .svg or .pdf; anything else is a usage error), atomically.
void save_figure(const Figure& figure, const std::string& path);
// The same for a figure already laid out (lay out first to fail before writing anything).
void save_scene(const Scene& scene, const std::string& path);
// The extensions save_figure accepts.
bool is_plot_extension(const std::string& path);

}  // namespace mmx::plot
