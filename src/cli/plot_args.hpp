// Options shared by the commands that draw (src/cli/plot_args.cpp): figure size, dpi, output path,
// and short labels for image files.
#pragma once
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cli/args.hpp"
#include "mmx/plot/heatmap_layout.hpp"

namespace mmx::cli {

std::string base_name(const std::string& path);  // the part after the last '/'
// Short labels for image files: the name without folder and extension ("astronaut"), or more of the
// path where that would leave two images with one label.
std::vector<std::string> image_labels(const std::vector<std::string>& paths);
// --<option> WIDTHxHEIGHT in inches; --dpi (default 100); a figure path's extension and folder.
std::optional<std::pair<double, double>> plot_size(const Args& args, const std::string& option);
double plot_dpi(const Args& args);
void check_plot_path(const std::string& path, const std::string& option);

// The options that style a heatmap (--cmap, --fmt, --vmin, --vmax, --no-annot; with `axes` also --xlabel
// and --ylabel), and what they set on a panel; checked when read, before any work.
std::vector<Option> heatmap_options(bool axes);
void apply_heatmap_options(const Args& args, plot::Heatmap& panel);

}  // namespace mmx::cli
