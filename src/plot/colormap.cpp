// matplotlib's coolwarm, built the way its author defined it: Moreland's diverging map ("Diverging
// Color Maps for Scientific Visualization", 2009) between blue Msh(80, 1.08, −1.1) and red
// Msh(80, 1.08, 0.5) through white, sampled at 33 points and interpolated linearly to 256 entries.
// tests/data/plot holds matplotlib 3.6.3's own table; the two agree within 0.03/255.
#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cmath>
#include <cstdio>
#include <numbers>
#include <vector>

#include "mmx/error.hpp"
#include "mmx/plot/colormap.hpp"

namespace mmx::plot {
namespace {

struct Msh {
  double m, s, h;
};

// CIELAB (D65 white) → XYZ → linear sRGB → sRGB, clipped to the gamut.
Rgb msh_to_rgb(const Msh& c) {
  const double l = c.m * std::cos(c.s), a = c.m * std::sin(c.s) * std::cos(c.h), b = c.m * std::sin(c.s) * std::sin(c.h);
  const double fy = (l + 16) / 116, fx = fy + a / 500, fz = fy - b / 200;
  auto finv = [](double t) { return t * t * t > 0.008856 ? t * t * t : (t - 16.0 / 116) / 7.787; };
  const double x = 0.95047 * finv(fx), y = 1.0 * finv(fy), z = 1.08883 * finv(fz);
  // Inverse of the sRGB primaries matrix [[.4124 .3576 .1805] [.2126 .7152 .0722] [.0193 .1192 .9505]].
  const double lr = 3.2406255 * x - 1.5372080 * y - 0.4986286 * z;
  const double lg = -0.9689307 * x + 1.8757561 * y + 0.0415175 * z;
  const double lb = 0.0557101 * x - 0.2040211 * y + 1.0569959 * z;
  auto gamma = [](double v) {
    const double s = v <= 0.0031308 ? 12.92 * v : 1.055 * std::pow(v, 1 / 2.4) - 0.055;
    return std::clamp(s, 0.0, 1.0);
  };
  return {gamma(lr), gamma(lg), gamma(lb)};
}

// Moreland's hue spin for a colour blended towards an unsaturated one, so the blend does not turn grey-green.
double adjust_hue(const Msh& saturated, double m_unsaturated) {
  if (saturated.m >= m_unsaturated) return saturated.h;
  const double spread = saturated.s * std::sqrt(m_unsaturated * m_unsaturated - saturated.m * saturated.m) /
                        (saturated.m * std::sin(saturated.s));
  return saturated.h > -std::numbers::pi / 3 ? saturated.h + spread : saturated.h - spread;
}

Rgb diverging(Msh c1, Msh c2, double t) {
  if (c1.s > 0.05 && c2.s > 0.05 && std::abs(c1.h - c2.h) > std::numbers::pi / 3) {
    const double mid = std::max({c1.m, c2.m, 88.0});  // the white point in the middle
    if (t < 0.5) {
      c2 = {mid, 0, 0};
      t = 2 * t;
    } else {
      c1 = {mid, 0, 0};
      t = 2 * t - 1;
    }
  }
  if (c1.s < 0.05 && c2.s > 0.05) c1.h = adjust_hue(c2, c1.m);
  else if (c2.s < 0.05 && c1.s > 0.05) c2.h = adjust_hue(c1, c2.m);
  return msh_to_rgb({(1 - t) * c1.m + t * c2.m, (1 - t) * c1.s + t * c2.s, (1 - t) * c1.h + t * c2.h});
}

std::array<Rgb, 256> build_coolwarm() {
  constexpr int kSamples = 33;
  std::array<Rgb, kSamples> points;
  for (int i = 0; i < kSamples; ++i) points[size_t(i)] = diverging({80, 1.08, -1.1}, {80, 1.08, 0.5}, i / 32.0);
  std::array<Rgb, 256> table;
  for (int i = 0; i < 256; ++i) {
    const double x = i / 255.0 * (kSamples - 1);
    const int k = std::min(static_cast<int>(x), kSamples - 2);
    const double f = x - k;
    const Rgb &a = points[size_t(k)], &b = points[size_t(k + 1)];
    table[size_t(i)] = {a.r + f * (b.r - a.r), a.g + f * (b.g - a.g), a.b + f * (b.b - a.b)};
  }
  return table;
}

double linear_channel(double c) { return c <= 0.03928 ? c / 12.92 : std::pow((c + 0.055) / 1.055, 2.4); }

}  // namespace

const std::array<Rgb, 256>& coolwarm_table() {
  static const std::array<Rgb, 256> table = build_coolwarm();
  return table;
}

Rgb coolwarm(double t) {
  if (std::isnan(t)) t = 0;
  const int i = t >= 1 ? 255 : t <= 0 ? 0 : std::min(255, static_cast<int>(t * 256));
  return coolwarm_table()[size_t(i)];
}

namespace {
std::array<Rgb, 256> linear_segments(const std::vector<Rgb>& colours) {  // equally spaced, as from_list
  std::array<Rgb, 256> t;
  const double segments = double(colours.size() - 1);
  for (int i = 0; i < 256; ++i) {
    const double x = i / 255.0 * segments;
    const size_t k = std::min(colours.size() - 2, static_cast<size_t>(x));
    const double f = x - double(k);
    const Rgb& a = colours[k];
    const Rgb& b = colours[k + 1];
    t[size_t(i)] = {a.r + (b.r - a.r) * f, a.g + (b.g - a.g) * f, a.b + (b.b - a.b) * f};
  }
  return t;
}
std::array<Rgb, 256> reversed(std::array<Rgb, 256> t) {
  std::reverse(t.begin(), t.end());
  return t;
}
}  // namespace

const std::array<Rgb, 256>& colormap_table(const std::string& name) {
  static const std::array<Rgb, 256> bwr = linear_segments({{0, 0, 1}, {1, 1, 1}, {1, 0, 0}});
  static const std::array<Rgb, 256> gray = linear_segments({{0, 0, 0}, {1, 1, 1}});
  static const std::array<Rgb, 256> coolwarm_r = reversed(coolwarm_table()), bwr_r = reversed(bwr),
                                    gray_r = reversed(gray);
  if (name == "coolwarm") return coolwarm_table();
  if (name == "coolwarm_r") return coolwarm_r;
  if (name == "bwr") return bwr;
  if (name == "bwr_r") return bwr_r;
  if (name == "gray" || name == "grey") return gray;
  if (name == "gray_r" || name == "grey_r") return gray_r;
  usage_error("colour map '", name, "' is not one mmx draws (coolwarm, bwr, gray; each reversed with _r)");
}

Rgb colormap(const std::array<Rgb, 256>& table, double t) {
  if (std::isnan(t)) t = 0;
  const int i = t >= 1 ? 255 : t <= 0 ? 0 : std::min(255, static_cast<int>(t * 256));
  return table[size_t(i)];
}

std::string format_number(double value, const std::string& spec) {
  if (spec == ".2g") return format_g2(value);
  char type = 0;
  int digits = -1;
  if (spec == "d") {
    type = 'd';
  } else if (spec.size() >= 3 && spec.size() <= 4 && spec[0] == '.' && std::isdigit(static_cast<unsigned char>(spec[1])) &&
             (spec.size() == 3 || std::isdigit(static_cast<unsigned char>(spec[2])))) {
    digits = std::atoi(spec.c_str() + 1);
    type = spec.back();
  }
  if (!(type == 'g' || type == 'f' || type == 'e' || type == '%' || type == 'd') || digits > 17)
    usage_error("number format '", spec, "' is not one mmx writes (.Ng, .Nf, .Ne, .N% with N up to 17, or d)");
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  char buf[64];
  if (type == 'd') std::snprintf(buf, sizeof buf, "%.0f", std::nearbyint(value));  // Python: d needs whole numbers
  else if (type == '%') std::snprintf(buf, sizeof buf, "%.*f%%", digits, value * 100);
  else std::snprintf(buf, sizeof buf, type == 'g' ? "%.*g" : type == 'f' ? "%.*f" : "%.*e", digits, value);
  return buf;
}

std::string format_g2(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2g", value);  // C's %g and Python's 'g' share their rules
  return buf;
}

Rgb annotation_color(const Rgb& cell) {
  const double luminance =
      0.2126 * linear_channel(cell.r) + 0.7152 * linear_channel(cell.g) + 0.0722 * linear_channel(cell.b);
  return luminance > 0.408 ? Rgb{0.15, 0.15, 0.15} : Rgb{1, 1, 1};
}

}  // namespace mmx::plot
