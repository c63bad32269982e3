// Colours of seaborn's `heatmap(annot=True, cmap='coolwarm')` (src/plot/colormap.cpp): matplotlib's
// coolwarm table, the annotation format and the annotation colour rule.
#pragma once
#include <array>
#include <string>

namespace mmx::plot {

struct Rgb {
  double r = 0, g = 0, b = 0;  // 0..1
};

// matplotlib's `coolwarm`: the 256-entry table (Moreland's diverging map sampled at 33 points, then
// interpolated linearly, as matplotlib's LinearSegmentedColormap does).
const std::array<Rgb, 256>& coolwarm_table();
// A value in [0, 1] → its table entry, the way a matplotlib Colormap indexes: floor(t × 256), clamped.
Rgb coolwarm(double t);

// A colour table by matplotlib's name: "coolwarm" (the default), "bwr" (blue, white, red: a linear
// segmented map of three colours), "gray" (black to white); each reversed with "_r". An unknown name is
// a usage error listing these.
const std::array<Rgb, 256>& colormap_table(const std::string& name);
Rgb colormap(const std::array<Rgb, 256>& table, double t);  // indexed as coolwarm() indexes

// Python's format(value, ".2g"): seaborn's default annotation (0.76, 0.0048, 3.2e-10, 1e+02).
std::string format_g2(double value);
// format(value, spec) for seaborn's fmt= specs ".Ng", ".Nf", ".Ne", ".N%" (N from 0 to 17) and "d"
// (whole numbers); any other spec is a usage error naming these.
std::string format_number(double value, const std::string& spec);
// seaborn's annotation colour: dark grey (".15") on light cells, white on dark ones (luminance > 0.408).
Rgb annotation_color(const Rgb& cell);

}  // namespace mmx::plot
