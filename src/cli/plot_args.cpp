// Options shared by the commands that draw: figure size, dpi, and short labels for image files.
#include <cmath>
#include <map>

#include "cli/plot_args.hpp"
#include "mmx/error.hpp"
#include "mmx/files.hpp"
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

}  // namespace mmx::cli
