// Drawing a laid-out Scene: Cairo for PNG (pixels at the figure's dpi) and PDF (points), and a small
// SVG writer of our own, because Cairo's SVG surface turns text into glyph outlines and we want the
// numbers and labels to stay text (searchable, selectable, checkable by tests).
#include <cairo-pdf.h>
#include <cairo.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numbers>

#include "mmx/error.hpp"
#include "mmx/files.hpp"
#include "mmx/plot/render.hpp"
#include "plot/font.hpp"

namespace mmx::plot {
namespace {

void check(cairo_status_t status, const std::string& what) {
  if (status != CAIRO_STATUS_SUCCESS) fail(what, ": cairo: ", cairo_status_to_string(status));
}

// Colours rounded to 8 bits first: Cairo's own conversion truncates, which would put PNG pixels up
// to 1/255 off the colormap's rounded values.
void set_color(cairo_t* cr, const Rgb& c) {
  auto q = [](double v) { return std::round(std::clamp(v, 0.0, 1.0) * 255) / 255; };
  cairo_set_source_rgb(cr, q(c.r), q(c.g), q(c.b));
}

void draw(cairo_t* cr, const Scene& scene) {
  cairo_font_options_t* options = cairo_font_options_create();
  cairo_font_options_set_hint_metrics(options, CAIRO_HINT_METRICS_OFF);  // the layout measured unhinted
  cairo_font_options_set_hint_style(options, CAIRO_HINT_STYLE_NONE);
  cairo_set_font_options(cr, options);
  cairo_font_options_destroy(options);
  cairo_select_font_face(cr, kFontFamily, CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);

  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  // Cells and colour-bar entries sit on whole pixels; without antialiasing their edges stay exact.
  cairo_set_antialias(cr, CAIRO_ANTIALIAS_NONE);
  for (const auto& r : scene.rects) {
    set_color(cr, r.fill);
    cairo_rectangle(cr, r.box.x0, r.box.y0, r.box.x1 - r.box.x0, r.box.y1 - r.box.y0);
    cairo_fill(cr);
  }
  cairo_set_antialias(cr, CAIRO_ANTIALIAS_DEFAULT);
  for (const auto& l : scene.lines) {
    set_color(cr, l.color);
    cairo_set_line_width(cr, l.width);
    cairo_move_to(cr, l.x0, l.y0);
    cairo_line_to(cr, l.x1, l.y1);
    cairo_stroke(cr);
  }
  for (const auto& t : scene.texts) {
    cairo_save(cr);
    set_color(cr, t.color);
    cairo_set_font_size(cr, t.size);
    cairo_translate(cr, t.x, t.y);
    if (t.vertical) cairo_rotate(cr, -std::numbers::pi / 2);
    cairo_move_to(cr, 0, 0);
    cairo_show_text(cr, t.text.c_str());
    cairo_restore(cr);
  }
}

cairo_status_t append_bytes(void* closure, const unsigned char* data, unsigned int length) {
  static_cast<std::string*>(closure)->append(reinterpret_cast<const char*>(data), length);
  return CAIRO_STATUS_SUCCESS;
}

// A pHYs chunk right after IHDR: the figure's dpi as pixels per metre (what matplotlib's savefig writes),
// so viewers and word processors show it at its size in inches.
std::string with_resolution(const std::string& png, double dpi) {
  const size_t after_ihdr = 8 + 4 + 4 + 13 + 4;  // signature, then IHDR: length, type, 13 bytes, CRC
  if (png.size() < after_ihdr || png.compare(12, 4, "IHDR") != 0) return png;
  const uint32_t per_metre = static_cast<uint32_t>(std::lround(dpi / 0.0254));
  std::string chunk = "pHYs";
  for (int i = 0; i < 2; ++i)
    for (int shift = 24; shift >= 0; shift -= 8) chunk += static_cast<char>((per_metre >> shift) & 0xff);
  chunk += '\x01';  // the unit: the metre
  const uint32_t crc = static_cast<uint32_t>(crc32(0L, reinterpret_cast<const Bytef*>(chunk.data()), static_cast<uInt>(chunk.size())));
  std::string out = png.substr(0, after_ihdr);
  out += std::string("\x00\x00\x00\x09", 4);  // the data's length: 9
  out += chunk;
  for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((crc >> shift) & 0xff);
  out += png.substr(after_ihdr);
  return out;
}

std::string render_png(const Scene& scene, const std::string& path) {
  cairo_surface_t* surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, scene.width, scene.height);
  check(cairo_surface_status(surface), path);
  cairo_t* cr = cairo_create(surface);
  draw(cr, scene);
  const cairo_status_t drawn = cairo_status(cr);
  cairo_destroy(cr);
  std::string bytes;
  const cairo_status_t written = drawn == CAIRO_STATUS_SUCCESS ? cairo_surface_write_to_png_stream(surface, append_bytes, &bytes) : drawn;
  cairo_surface_destroy(surface);
  check(written, path);
  return with_resolution(bytes, scene.dpi);
}

std::string render_pdf(const Scene& scene, const std::string& path) {
  std::string bytes;
  const double scale = 72.0 / scene.dpi;  // PDF pages are measured in points
  cairo_surface_t* surface = cairo_pdf_surface_create_for_stream(append_bytes, &bytes, scene.width * scale, scene.height * scale);
  check(cairo_surface_status(surface), path);
  cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_CREATOR, "mmx");
  cairo_t* cr = cairo_create(surface);
  cairo_scale(cr, scale, scale);
  draw(cr, scene);
  const cairo_status_t drawn = cairo_status(cr);
  cairo_destroy(cr);
  cairo_surface_finish(surface);
  const cairo_status_t finished = cairo_surface_status(surface);
  cairo_surface_destroy(surface);
  check(drawn, path);
  check(finished, path);
  return bytes;
}

std::string svg_color(const Rgb& c) {
  char buf[8];
  auto byte = [](double v) { return static_cast<int>(std::lround(std::clamp(v, 0.0, 1.0) * 255)); };
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", byte(c.r), byte(c.g), byte(c.b));
  return buf;
}

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  std::string s = buf;
  while (s.back() == '0') s.pop_back();
  if (s.back() == '.') s.pop_back();
  return s == "-0" ? "0" : s;
}

std::string render_svg(const Scene& scene) {
  const double pt = 72.0 / scene.dpi;
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + num(scene.width * pt) + "pt\" height=\"" +
         num(scene.height * pt) + "pt\" viewBox=\"0 0 " + std::to_string(scene.width) + " " +
         std::to_string(scene.height) + "\">\n";
  out += "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n<g shape-rendering=\"crispEdges\">\n";
  for (const auto& r : scene.rects)
    out += "<rect x=\"" + num(r.box.x0) + "\" y=\"" + num(r.box.y0) + "\" width=\"" + num(r.box.x1 - r.box.x0) +
           "\" height=\"" + num(r.box.y1 - r.box.y0) + "\" fill=\"" + svg_color(r.fill) + "\"/>\n";
  out += "</g>\n";
  for (const auto& l : scene.lines)
    out += "<line x1=\"" + num(l.x0) + "\" y1=\"" + num(l.y0) + "\" x2=\"" + num(l.x1) + "\" y2=\"" + num(l.y1) +
           "\" stroke=\"" + svg_color(l.color) + "\" stroke-width=\"" + num(l.width) + "\"/>\n";
  out += std::string("<g font-family=\"") + kFontFamily + ", sans-serif\">\n";
  for (const auto& t : scene.texts) {
    out += "<text x=\"" + num(t.x) + "\" y=\"" + num(t.y) + "\" font-size=\"" + num(t.size) + "\" fill=\"" +
           svg_color(t.color) + "\"";
    if (t.vertical) out += " transform=\"rotate(-90 " + num(t.x) + " " + num(t.y) + ")\"";
    out += " xml:space=\"preserve\">" + xml_escape(t.text) + "</text>\n";
  }
  out += "</g>\n</svg>\n";
  return out;
}

std::string lower_extension(const std::string& path) {
  const size_t slash = path.find_last_of('/'), dot = path.find_last_of('.');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return "";
  std::string ext = path.substr(dot);
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext;
}

}  // namespace

bool is_plot_extension(const std::string& path) {
  const std::string ext = lower_extension(path);
  return ext == ".png" || ext == ".svg" || ext == ".pdf";
}

void save_figure(const Figure& figure, const std::string& path) { save_scene(layout_figure(figure), path); }

void save_scene(const Scene& scene, const std::string& path) {
  if (!is_plot_extension(path))
    usage_error("'", path, "': a figure is written as .png, .svg or .pdf (by the file's extension)");
  check_output_path(path);
  const std::string ext = lower_extension(path);
  const std::string bytes = ext == ".png" ? render_png(scene, path) : ext == ".pdf" ? render_pdf(scene, path) : render_svg(scene);
  write_file_atomically(path, bytes);
}

}  // namespace mmx::plot
