// Options shared by the commands that draw: figure size, dpi, and short labels for image files.
#include <cmath>
#include <cstdlib>
#include <map>

#include "cli/plot_args.hpp"
#include "mmx/error.hpp"
#include "mmx/files.hpp"
#include "mmx/plot/colormap.hpp"
#include "mmx/plot/render.hpp"

namespace mmx::cli {

std::string base_name(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

namespace {
std::string stem(const std::string& name) {
  const size_t dot = name.find_last_of('.');
  return dot == std::string::npos || dot == 0 ? name : name.substr(0, dot);
}
bool unique(const std::vector<std::string>& labels) {
  std::map<std::string, int> seen;
  for (const auto& l : labels)
    if (++seen[l] > 1) return false;
  return true;
}
double positive_number(const std::string& text, const std::string& option) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(text, &used);
  } catch (...) {
    used = 0;
  }
  if (used == 0 || used != text.size() || !std::isfinite(v) || v <= 0)
    usage_error("--", option, " expects a positive number, got '", text, "'");
  return v;
}
}  // namespace

std::vector<std::string> image_labels(const std::vector<std::string>& paths) {
  std::vector<std::string> labels;
  for (const auto& p : paths) labels.push_back(stem(base_name(p)));  // "astronaut", as the lab names its photos
  if (unique(labels)) return labels;
  labels.clear();
  for (const auto& p : paths) labels.push_back(base_name(p));
  return unique(labels) ? labels : paths;
}

std::optional<std::pair<double, double>> plot_size(const Args& args, const std::string& option) {
  const auto v = args.get(option);
  if (!v) return std::nullopt;
  const size_t x = v->find_first_of("xX");
  if (x == std::string::npos) usage_error("--", option, " expects WIDTHxHEIGHT in inches (e.g. 12x6), got '", *v, "'");
  return std::pair{positive_number(v->substr(0, x), option), positive_number(v->substr(x + 1), option)};
}

double plot_dpi(const Args& args) {
  const auto v = args.get("dpi");
  if (!v) return 100;
  const double dpi = positive_number(*v, "dpi");
  if (dpi < 10 || dpi > 1200) usage_error("--dpi ", *v, " is outside 10…1200");
  return dpi;
}

void check_plot_path(const std::string& path, const std::string& option) {
  if (!plot::is_plot_extension(path))
    usage_error("--", option, " '", path, "': unknown extension; a figure is written as .png, .svg or .pdf");
  check_output_path(path);
}

std::vector<Option> heatmap_options(bool axes) {
  std::vector<Option> options = {
      {"cmap", "NAME", "colour map: coolwarm (default, as the lab), bwr, gray; _r reverses (coolwarm_r)",
       false, {"coolwarm", "coolwarm_r", "bwr", "bwr_r", "gray", "gray_r"}},
      {"fmt", "SPEC", "annotation format, as seaborn's fmt=: .2g (default), .3f, .1e, .0%, d"},
      {"vmin", "X", "the value at the bottom of the colour scale (default: the matrix's least)"},
      {"vmax", "X", "the value at the top (default: the matrix's greatest)"},
      {"no-annot", "", "leave the cells without their values"},
  };
  if (axes) {
    options.push_back(text_option("xlabel", "T", "the columns' axis name (default: Text or Image)"));
    options.push_back(text_option("ylabel", "T", "the rows' axis name"));
  }
  return options;
}

void apply_heatmap_options(const Args& args, plot::Heatmap& panel) {
  if (auto v = args.get("cmap")) panel.cmap = *v;
  if (auto v = args.get("fmt")) panel.fmt = *v;
  if (auto v = args.get("xlabel")) panel.x_label = *v;
  if (auto v = args.get("ylabel")) panel.y_label = *v;
  if (args.has("no-annot")) panel.annotate = false;
  for (const char* name : {"vmin", "vmax"})
    if (auto v = args.get(name)) {
      char* end = nullptr;
      const double x = std::strtod(v->c_str(), &end);
      if (v->empty() || *end != '\0' || !std::isfinite(x)) usage_error("--", name, " expects a number, got '", *v, "'");
      (std::string(name) == "vmin" ? panel.vmin : panel.vmax) = x;
    }
  if (panel.vmin && panel.vmax && *panel.vmax < *panel.vmin)
    usage_error("--vmax ", *panel.vmax, " is below --vmin ", *panel.vmin);
  plot::colormap_table(panel.cmap);
  plot::format_number(0.0, panel.fmt);
}

}  // namespace mmx::cli
