// Figures written as PNG or PDF through Cairo, or as SVG by mmx (src/plot/render.cpp), chosen by the
// file extension; atomically.
#pragma once
#include <string>

#include "mmx/plot/heatmap_layout.hpp"

namespace mmx::plot {

// Writes the figure to `path` (.png, .svg or .pdf; anything else is a usage error), atomically.
void save_figure(const Figure& figure, const std::string& path);
// The same for a figure already laid out (lay out first to fail before writing anything).
void save_scene(const Scene& scene, const std::string& path);
// The extensions save_figure accepts.
bool is_plot_extension(const std::string& path);

}  // namespace mmx::plot
