// The heatmap renderer against matplotlib 3.6.3 / seaborn 0.12.2 (tests/data/plot): the coolwarm
// table, cell colours, annotation texts and colours, the seaborn-drawn reference figure's pixels;
// then our own PNG pixels, SVG text, PDF, label placement (nothing clipped) and bad input.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <png.h>

#include <nlohmann/json.hpp>

#include "mmx/error.hpp"
#include "mmx/files.hpp"
#include "mmx/image.hpp"
#include "lab/lab.hpp"
#include "mmx/plot/render.hpp"
#include "test_util.hpp"

using namespace mmx;
using nlohmann::json;

namespace {

json reference() { return json::parse(read_file(test::data("plot/seaborn-heatmap-reference.json"))); }

double channel_diff(const plot::Rgb& a, const std::vector<double>& b) {
  return std::max({std::abs(a.r - b[0]), std::abs(a.g - b[1]), std::abs(a.b - b[2])});
}

int byte(double v) { return static_cast<int>(std::lround(v * 255)); }

plot::Heatmap reference_heatmap(const json& ref) {
  plot::Heatmap h;
  h.rows = static_cast<int>(ref["values"].size());
  h.cols = static_cast<int>(ref["values"][0].size());
  for (const auto& row : ref["values"])
    for (double v : row) h.values.push_back(v);
  return h;
}

plot::Figure one_panel(plot::Heatmap h, double w = 6, double ht = 6, double dpi = 100) {
  plot::Figure f;
  f.panels = {std::move(h)};
  f.width_in = w;
  f.height_in = ht;
  f.dpi = dpi;
  return f;
}

// The lab's CLIP figure from the fixture matrices (what seed_heatmaps.png shows).
plot::Figure lab_clip_fixture_figure() {
  const auto expected = SafetensorsFile::open(test::data("expected/clip-tiny.safetensors"));
  LabInputs in;
  in.captions = lab_original_captions();
  in.dialogue = lab_default_dialogue();
  in.image_labels = {"astronaut", "chelsea", "coffee", "rocket"};
  LabResult r;
  r.clip_captions_image = expected.get("seed_captions_image").clone();
  r.clip_dialogue_image = expected.get("seed_dialogue_image").clone();
  return lab_clip_figure(in, r);
}

bool overlaps(const plot::Box& a, const plot::Box& b, double eps = 0.5) {
  return a.x0 < b.x1 - eps && b.x0 < a.x1 - eps && a.y0 < b.y1 - eps && b.y0 < a.y1 - eps;
}

// Every text inside the figure; labels, titles and colour-bar ticks outside the cells; each annotation
// inside its cell; no two labels of one axis on top of each other.
void expect_nothing_clipped(const plot::Figure& figure, const std::string& name) {
  const plot::Scene s = plot::layout_figure(figure);
  int checked = 0;
  for (const auto& t : s.texts) {
    EXPECT_GE(t.box.x0, -1e-6) << name << ": '" << t.text << "' leaves the figure on the left";
    EXPECT_GE(t.box.y0, -1e-6) << name << ": '" << t.text << "' leaves the figure at the top";
    EXPECT_LE(t.box.x1, s.width + 1e-6) << name << ": '" << t.text << "' leaves the figure on the right";
    EXPECT_LE(t.box.y1, s.height + 1e-6) << name << ": '" << t.text << "' leaves the figure at the bottom";
    if (t.role == plot::TextRole::Annotation) {
      const bool inside_a_cell = std::any_of(s.cells.begin(), s.cells.end(), [&](const plot::CellItem& c) {
        return t.box.x0 >= c.box.x0 && t.box.x1 <= c.box.x1 && t.box.y0 >= c.box.y0 - 1 && t.box.y1 <= c.box.y1 + 1;
      });
      EXPECT_TRUE(inside_a_cell) << name << ": annotation '" << t.text << "' spills out of its cell";
    } else {
      for (const auto& area : s.heatmap_areas)
        EXPECT_FALSE(overlaps(t.box, area)) << name << ": '" << t.text << "' covers cells";
    }
    ++checked;
  }
  for (size_t i = 0; i < s.texts.size(); ++i)
    for (size_t j = i + 1; j < s.texts.size(); ++j) {
      const auto &a = s.texts[i], &b = s.texts[j];
      if (a.role != b.role || a.role == plot::TextRole::Annotation) continue;
      EXPECT_FALSE(overlaps(a.box, b.box, 1.0)) << name << ": '" << a.text << "' and '" << b.text << "' overlap";
    }
  EXPECT_GT(checked, 0);
}

}  // namespace

TEST(Plot, CoolwarmTableIsMatplotlibs) {
  const json ref = reference();
  const auto& table = plot::coolwarm_table();
  ASSERT_EQ(ref["coolwarm_256"].size(), 256u);
  double worst = 0;
  for (size_t i = 0; i < 256; ++i) worst = std::max(worst, channel_diff(table[i], ref["coolwarm_256"][i]));
  std::printf("  coolwarm vs matplotlib 3.6.3: max |d| = %.3g (%.3f/255)\n", worst, worst * 255);
  EXPECT_LE(worst, 0.1 / 255);
  // Indexing as a matplotlib Colormap: floor(t × 256), t = 1 → the last entry.
  EXPECT_EQ(byte(plot::coolwarm(0).r), byte(table[0].r));
  EXPECT_EQ(byte(plot::coolwarm(1).b), byte(table[255].b));
  EXPECT_EQ(byte(plot::coolwarm(0.5).g), byte(table[128].g));
  EXPECT_EQ(byte(plot::coolwarm(0.499).g), byte(table[127].g));
}

TEST(Plot, CellColoursAnnotationsAndTheirColoursAreSeaborns) {
  const json ref = reference();
  const plot::Scene s = plot::layout_figure(one_panel(reference_heatmap(ref)));
  ASSERT_EQ(s.cells.size(), ref["cell_colors"].size());
  double worst = 0;
  for (const auto& c : s.cells) {
    const size_t k = size_t(c.row) * 4 + size_t(c.col);
    worst = std::max(worst, channel_diff(c.fill, ref["cell_colors"][k]));
  }
  std::printf("  cell colours vs seaborn: max |d| = %.3g\n", worst);
  EXPECT_LE(worst, 0.1 / 255);
  std::vector<const plot::TextItem*> notes;
  for (const auto& t : s.texts)
    if (t.role == plot::TextRole::Annotation) notes.push_back(&t);
  ASSERT_EQ(notes.size(), ref["annotations"].size());
  for (size_t k = 0; k < notes.size(); ++k) {  // laid out row-major, like seaborn's
    EXPECT_EQ(notes[k]->text, ref["annotations"][k].get<std::string>()) << "cell " << k;
    EXPECT_LE(channel_diff(notes[k]->color, ref["annotation_colors"][k]), 1e-9) << "text colour of cell " << k;
  }
}

TEST(Plot, NumbersAreFormattedAsPythons2g) {
  const json ref = reference();  // kept alive: items() refers into it
  for (const auto& [value, text] : ref["python_format_2g"].items())
    EXPECT_EQ(plot::format_g2(std::stod(value)), text.get<std::string>()) << value;
  EXPECT_EQ(plot::format_g2(NAN), "nan");
  EXPECT_EQ(plot::format_g2(-INFINITY), "-inf");
}

// --cmap: the other tables against matplotlib's own (tools/make_plot_reference.py), indexed alike.
TEST(Plot, OtherColourMapsAreMatplotlibs) {
  const json ref = reference();
  for (const auto& [name, entries] : ref["colormaps_256"].items()) {
    const auto& table = plot::colormap_table(name);
    ASSERT_EQ(entries.size(), 256u) << name;
    double worst = 0;
    for (size_t i = 0; i < 256; ++i) worst = std::max(worst, channel_diff(table[i], entries[i]));
    std::printf("  %s vs matplotlib 3.6.3: max |d| = %.3g (%.3f/255)\n", name.c_str(), worst, worst * 255);
    EXPECT_LE(worst, 0.1 / 255) << name;
  }
  EXPECT_THROW(plot::colormap_table("viridis"), Error);
  EXPECT_EQ(byte(plot::colormap(plot::colormap_table("gray"), 1.0).r), 255);
}

// --fmt: seaborn's fmt= specs as Python's format() writes them.
TEST(Plot, NumberFormatsAreFormattedAsPythons) {
  const json ref = reference();
  for (const auto& [spec, cases] : ref["python_formats"].items())
    for (const auto& [value, text] : cases.items())
      EXPECT_EQ(plot::format_number(std::stod(value), spec), text.get<std::string>()) << spec << " " << value;
  for (const auto& [value, text] : ref["python_format_d"].items())
    EXPECT_EQ(plot::format_number(std::stod(value), "d"), text.get<std::string>()) << value;
  for (const char* bad : {"", ".2x", "2g", ".g", ".123f", ".18g", "{:.2f}"}) EXPECT_THROW(plot::format_number(1.0, bad), Error) << bad;
}

TEST(Plot, SeabornsReferenceFigureHasOurCellColours) {
  // seed_heatmaps.png is the lab's plot_similarity drawn by seaborn on the same matrices: each cell's
  // colour by our colormap and normalisation must fill a cell-sized area of its half of the picture.
  const auto expected = SafetensorsFile::open(test::data("expected/clip-tiny.safetensors"));
  const Image png = load_image(test::data("plot/seed_heatmaps.png"));
  ASSERT_EQ(png.width, 1200);
  int half = 0;
  for (const char* key : {"seed_captions_image", "seed_dialogue_image"}) {
    const Tensor m = expected.get(key);
    const float* v = m.data<float>();
    const auto [lo, hi] = std::minmax_element(v, v + m.numel());
    for (int64_t k = 0; k < m.numel(); ++k) {
      const plot::Rgb c = plot::coolwarm((v[k] - *lo) / (*hi - *lo));
      int64_t count = 0;
      for (int64_t y = 0; y < png.height; ++y)
        for (int64_t x = half * 600; x < half * 600 + 600; ++x) {
          const uint8_t* p = &png.rgb[size_t((y * png.width + x) * 3)];
          if (std::abs(p[0] - byte(c.r)) <= 1 && std::abs(p[1] - byte(c.g)) <= 1 && std::abs(p[2] - byte(c.b)) <= 1)
            ++count;
        }
      EXPECT_GE(count, 2000) << key << " entry " << k << " = " << v[k] << ": its colour is not a cell of the reference";
    }
    ++half;
  }
}

TEST(Plot, PngCellsHaveTheColormapColours) {
  test::TempDir dir;
  const plot::Figure figure = lab_clip_fixture_figure();
  plot::save_figure(figure, dir.file("lab_clip.png"));
  const Image png = load_image(dir.file("lab_clip.png"));
  const plot::Scene s = plot::layout_figure(figure);
  ASSERT_EQ(png.width, 1200);
  ASSERT_EQ(png.height, 600);
  ASSERT_EQ(s.cells.size(), 32u);
  int worst = 0;
  for (const auto& c : s.cells)  // corners and edge midpoints, clear of the centred annotation
    for (const auto& [fx, fy] : std::vector<std::pair<double, double>>{{0.05, 0.05}, {0.95, 0.95}, {0.5, 0.1}, {0.1, 0.5}}) {
      const int64_t x = static_cast<int64_t>(c.box.x0 + fx * (c.box.x1 - c.box.x0));
      const int64_t y = static_cast<int64_t>(c.box.y0 + fy * (c.box.y1 - c.box.y0));
      const uint8_t* p = &png.rgb[size_t((y * png.width + x) * 3)];
      worst = std::max({worst, std::abs(p[0] - byte(c.fill.r)), std::abs(p[1] - byte(c.fill.g)), std::abs(p[2] - byte(c.fill.b))});
    }
  std::printf("  PNG cell pixels vs colormap: max |d| = %d/255\n", worst);
  EXPECT_LE(worst, 0);  // colours are rounded to 8 bits before Cairo sees them
  // The annotations were drawn: the centre of each cell holds pixels of the annotation's colour.
  for (const auto& t : s.texts) {
    if (t.role != plot::TextRole::Annotation) continue;
    int hits = 0;
    for (int64_t y = int64_t(t.box.y0); y < int64_t(t.box.y1); ++y)
      for (int64_t x = int64_t(t.box.x0); x < int64_t(t.box.x1); ++x) {
        const uint8_t* p = &png.rgb[size_t((y * png.width + x) * 3)];
        hits += std::abs(p[0] - byte(t.color.r)) <= 8 && std::abs(p[1] - byte(t.color.g)) <= 8 &&
                std::abs(p[2] - byte(t.color.b)) <= 8;
      }
    EXPECT_GE(hits, 10) << "annotation '" << t.text << "' is not visible";
  }
}

TEST(Plot, SvgKeepsAnnotationsAndLabelsAsText) {
  test::TempDir dir;
  plot::Figure figure = lab_clip_fixture_figure();
  figure.panels[0].row_labels[0] = "a <b> & \"c\" 'd'";
  figure.panels[0].row_labels[1] = std::string("bad \xff byte\tand tab");
  plot::save_figure(figure, dir.file("f.svg"));
  const std::string svg = read_file(dir.file("f.svg"));
  EXPECT_EQ(svg.rfind("<?xml", 0), 0u);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  for (const auto& t : plot::layout_figure(lab_clip_fixture_figure()).texts) {
    if (t.role == plot::TextRole::Annotation) {
      EXPECT_NE(svg.find(">" + t.text + "</text>"), std::string::npos) << "annotation " << t.text;
    }
  }
  for (const char* label : {"astronaut", "rocket", "Cats don&apos;t usually", "Similarity between Captions and Image Embeddings"})
    EXPECT_NE(svg.find(std::string(">") + label + "</text>"), std::string::npos) << label;
  EXPECT_NE(svg.find("a &lt;b&gt; &amp; &quot;c&quot; &apos;d&apos;"), std::string::npos);
  EXPECT_EQ(svg.find("<b>"), std::string::npos);
  EXPECT_NE(svg.find("bad \xEF\xBF\xBD byte and tab"), std::string::npos);  // U+FFFD, tab → space
  EXPECT_EQ(find_invalid_utf8(svg), std::string::npos);
}

TEST(Plot, PdfIsWritten) {
  test::TempDir dir;
  plot::save_figure(lab_clip_fixture_figure(), dir.file("f.PDF"));
  const std::string pdf = read_file(dir.file("f.PDF"));
  EXPECT_EQ(pdf.rfind("%PDF-", 0), 0u);
  EXPECT_NE(pdf.find("%%EOF"), std::string::npos);
}

TEST(Plot, LabelsAreNeverClipped) {
  expect_nothing_clipped(lab_clip_fixture_figure(), "lab clip");
  plot::Heatmap wide;
  wide.rows = 3;
  wide.cols = 40;
  for (int i = 0; i < 120; ++i) wide.values.push_back(std::sin(i * 0.7));
  for (int i = 0; i < 3; ++i)
    wide.row_labels.push_back("a rather long caption number " + std::to_string(i) + " that must be wrapped somewhere sensible");
  for (int j = 0; j < 40; ++j) wide.col_labels.push_back("image_file_with_a_long_name_" + std::to_string(j) + ".jpg");
  wide.title = "A title that is much longer than anything that would fit on one line of this small panel at all";
  wide.x_label = "Images";
  wide.y_label = "Captions";
  expect_nothing_clipped(one_panel(wide, 8, 6), "3×40, long labels");
  expect_nothing_clipped(one_panel(wide, 16, 10, 50), "3×40 at 50 dpi");
  plot::Heatmap tall = wide;
  std::swap(tall.rows, tall.cols);
  std::swap(tall.row_labels, tall.col_labels);
  expect_nothing_clipped(one_panel(tall, 8, 12, 150), "40×3");
  plot::Heatmap one;
  one.rows = one.cols = 1;
  one.values = {0.5};
  one.row_labels = {"only"};
  one.col_labels = {"one"};
  expect_nothing_clipped(one_panel(one, 3, 3), "1×1");
  plot::Heatmap word;  // one unbreakable word far wider than a panel
  word.rows = 2;
  word.cols = 2;
  word.values = {1, 2, 3, 4};
  word.row_labels = {std::string(200, 'w'), "x"};
  word.col_labels = {std::string(200, 'c'), "y"};
  expect_nothing_clipped(one_panel(word, 6, 6), "unbreakable words");
}

TEST(Plot, ConstantMatrixAndNanCells) {
  plot::Heatmap h;
  h.rows = 2;
  h.cols = 2;
  h.values = {0.25, 0.25, 0.25, NAN};
  const plot::Scene s = plot::layout_figure(one_panel(h));
  EXPECT_EQ(s.cells.size(), 3u);  // the NaN cell is left blank, as seaborn masks it
  for (const auto& c : s.cells) EXPECT_EQ(byte(c.fill.b), byte(plot::coolwarm_table()[0].b));  // Normalize → 0
}

TEST(Plot, BadInputIsAClearError) {
  test::TempDir dir;
  const plot::Figure good = lab_clip_fixture_figure();
  auto kind_of = [](auto&& f) {
    try {
      f();
    } catch (const Error& e) {
      return static_cast<int>(e.kind());
    }
    return 0;
  };
  EXPECT_EQ(kind_of([&] { plot::save_figure(good, dir.file("f.bmp")); }), 2);
  EXPECT_EQ(kind_of([&] { plot::save_figure(good, dir.file("f")); }), 2);
  EXPECT_EQ(kind_of([&] { plot::save_figure(good, dir.file("missing/f.png")); }), 2);
  plot::Figure empty = good;
  empty.panels[0].rows = 0;
  empty.panels[0].values.clear();
  EXPECT_EQ(kind_of([&] { plot::save_figure(empty, dir.file("f.png")); }), 1);
  plot::Figure labels = good;
  labels.panels[0].row_labels.pop_back();
  EXPECT_EQ(kind_of([&] { plot::layout_figure(labels); }), 1);
  plot::Figure tiny = good;
  tiny.width_in = 0.5;
  EXPECT_EQ(kind_of([&] { plot::layout_figure(tiny); }), 1);
  plot::Figure crowded = good;
  crowded.grid_cols = 1;
  EXPECT_EQ(kind_of([&] { plot::layout_figure(crowded); }), 1);
  EXPECT_TRUE(std::filesystem::is_empty(dir.path));  // nothing written by any failure
  try {
    plot::save_figure(good, dir.file("f.bmp"));
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(".png, .svg or .pdf"), std::string::npos) << e.what();
  }
}

// The PNG carries its dpi (a pHYs chunk in pixels per metre, as matplotlib's savefig writes), checked
// here against libpng's own reading of the chunk.
TEST(Plot, PngCarriesItsResolution) {
  test::TempDir dir;
  plot::Figure figure = one_panel(reference_heatmap(reference()));
  for (double dpi : {72.0, 100.0, 150.0}) {
    figure.dpi = dpi;
    const std::string path = dir.file("f" + std::to_string(int(dpi)) + ".png");
    plot::save_figure(figure, path);
    FILE* f = std::fopen(path.c_str(), "rb");
    ASSERT_NE(f, nullptr);
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
    png_infop info = png_create_info_struct(png);
    png_init_io(png, f);
    png_read_info(png, info);  // a chunk with a bad CRC would be an error here
    png_uint_32 x = 0, y = 0;
    int unit = -1;
    ASSERT_TRUE(png_get_pHYs(png, info, &x, &y, &unit)) << dpi;
    EXPECT_EQ(unit, PNG_RESOLUTION_METER);
    EXPECT_EQ(x, static_cast<png_uint_32>(std::lround(dpi / 0.0254)));
    EXPECT_EQ(y, x);
    png_destroy_read_struct(&png, &info, nullptr);
    std::fclose(f);
    EXPECT_EQ(load_image(path).width, std::lround(figure.width_in * dpi));
  }
}
