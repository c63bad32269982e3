// Image.resize as Pillow 9 does it, to the bit (semantics learned from Pillow's libImaging/Resample.c
// and Geometry.c; the code is mmx's own):
// - NEAREST is an affine "scale" transform: source pixel = floor(x0 + a·(x + 0.5)), with the position
//   accumulated step by step in double, as Pillow does.
// - The other filters are separable convolutions, horizontal pass first, over the source rows the
//   vertical pass needs. The filter's support grows with the downscale factor (antialiasing);
//   weights are normalised in double, then turned into 22-bit fixed point, and each output is
//   (Σ pixel·weight + 2^21) >> 22 clamped to 0..255.
#include <array>
#include <cmath>
#include <cstring>

#include "core/thread_pool.hpp"
#include "mmx/error.hpp"
#include "mmx/pil_resize.hpp"

namespace mmx {

namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;

struct Filter {
  double support;
  double (*weight)(double);
};

double box_filter(double x) { return (x > -0.5 && x <= 0.5) ? 1.0 : 0.0; }
double bilinear_filter(double x) {
  x = std::fabs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}
double hamming_filter(double x) {
  x = std::fabs(x);
  if (x == 0.0) return 1.0;
  if (x >= 1.0) return 0.0;
  x *= M_PI;
  return std::sin(x) / x * (0.54 + 0.46 * std::cos(x));
}
double bicubic_filter(double x) {  // Keys cubic with a = −0.5
  constexpr double a = -0.5;
  x = std::fabs(x);
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}
double sinc(double x) {
  if (x == 0.0) return 1.0;
  x *= M_PI;
  return std::sin(x) / x;
}
double lanczos_filter(double x) { return (-3.0 <= x && x < 3.0) ? sinc(x) * sinc(x / 3) : 0.0; }

Filter filter_for(Resample r) {
  switch (r) {
    case Resample::Box: return {0.5, box_filter};
    case Resample::Bilinear: return {1.0, bilinear_filter};
    case Resample::Hamming: return {1.0, hamming_filter};
    case Resample::Bicubic: return {2.0, bicubic_filter};
    case Resample::Lanczos: return {3.0, lanczos_filter};
    case Resample::Nearest: break;
  }
  fail("no convolution filter for NEAREST");
}

// Per output position: first source index, tap count, and ksize fixed-point weights.
struct Coefficients {
  int ksize = 0;
  std::vector<int> first, count;
  std::vector<int32_t> weights;
};

// Over the source interval [in0, in1) (Pillow's box, in float): the whole axis unless a box is given.
Coefficients precompute(int in_size, double in0, double in1, int out_size, const Filter& filter) {
  const double scale = (in1 - in0) / out_size;
  const double filter_scale = scale < 1.0 ? 1.0 : scale;
  const double support = filter.support * filter_scale;
  Coefficients c;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.first.resize(out_size);
  c.count.resize(out_size);
  c.weights.assign(size_t(out_size) * c.ksize, 0);
  std::vector<double> k(c.ksize);
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = in0 + (xx + 0.5) * scale;
    const double ss = 1.0 / filter_scale;
    int xmin = static_cast<int>(center - support + 0.5);  // truncation, as the C cast does
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double total = 0.0;
    for (int x = 0; x < xmax; ++x) {
      k[x] = filter.weight((x + xmin - center + 0.5) * ss);
      total += k[x];
    }
    for (int x = 0; x < xmax; ++x) {
      const double w = total != 0.0 ? k[x] / total : k[x];
      c.weights[size_t(xx) * c.ksize + x] =
          static_cast<int32_t>(w < 0 ? -0.5 + w * (1 << kPrecisionBits) : 0.5 + w * (1 << kPrecisionBits));
    }
    c.first[xx] = xmin;
    c.count[xx] = xmax;
  }
  return c;
}

inline uint8_t clip8(int32_t v) {
  const int32_t shifted = v >> kPrecisionBits;  // arithmetic shift: floor
  return static_cast<uint8_t>(shifted < 0 ? 0 : shifted > 255 ? 255 : shifted);
}

// Horizontal pass over source rows [row0, row0 + rows) → rows × out_width.
Image resample_horizontal(const Image& in, int64_t row0, int64_t rows, int out_width, const Coefficients& c) {
  Image out;
  out.width = out_width;
  out.height = rows;
  out.rgb.resize(size_t(out_width) * rows * 3);
  parallel_for(rows, grain_rows(3 * out_width), [&](int64_t y0, int64_t y1) {
    for (int64_t y = y0; y < y1; ++y) {
      const uint8_t* src = in.rgb.data() + size_t(row0 + y) * in.width * 3;
      uint8_t* dst = out.rgb.data() + size_t(y) * out_width * 3;
      for (int xx = 0; xx < out_width; ++xx) {
        const int32_t* k = &c.weights[size_t(xx) * c.ksize];
        int32_t s0 = 1 << (kPrecisionBits - 1), s1 = s0, s2 = s0;
        const uint8_t* p = src + size_t(c.first[xx]) * 3;
        for (int x = 0; x < c.count[xx]; ++x) {
          s0 += p[x * 3 + 0] * k[x];
          s1 += p[x * 3 + 1] * k[x];
          s2 += p[x * 3 + 2] * k[x];
        }
        dst[xx * 3 + 0] = clip8(s0);
        dst[xx * 3 + 1] = clip8(s1);
        dst[xx * 3 + 2] = clip8(s2);
      }
    }
  });
  return out;
}

// Vertical pass; the coefficients' first rows are relative to `in`'s row 0.
Image resample_vertical(const Image& in, int out_height, const Coefficients& c, int row_offset) {
  Image out;
  out.width = in.width;
  out.height = out_height;
  out.rgb.resize(size_t(in.width) * out_height * 3);
  const size_t stride = size_t(in.width) * 3;
  parallel_for(out_height, grain_rows(int64_t(stride)), [&](int64_t first, int64_t end) {
    for (int64_t yy = first; yy < end; ++yy) {
      const int32_t* k = &c.weights[size_t(yy) * c.ksize];
      const uint8_t* src = in.rgb.data() + size_t(c.first[yy] - row_offset) * stride;
      uint8_t* dst = out.rgb.data() + size_t(yy) * stride;
      for (size_t i = 0; i < stride; ++i) {
        int32_t s = 1 << (kPrecisionBits - 1);
        for (int y = 0; y < c.count[yy]; ++y) s += src[size_t(y) * stride + i] * k[y];
        dst[i] = clip8(s);
      }
    }
  });
  return out;
}

Image resize_nearest(const Image& in, int64_t width, int64_t height) {
  const double ax = static_cast<double>(in.width) / width, ay = static_cast<double>(in.height) / height;
  auto coord = [](double v) { return v < 0.0 ? -1 : static_cast<int64_t>(v); };
  std::vector<int64_t> xs(width);
  double xo = ax * 0.5;
  for (int64_t x = 0; x < width; ++x, xo += ax) xs[x] = coord(xo);
  Image out;
  out.width = width;
  out.height = height;
  out.rgb.assign(size_t(width) * height * 3, 0);
  double yo = ay * 0.5;
  for (int64_t y = 0; y < height; ++y, yo += ay) {
    const int64_t yi = coord(yo);
    if (yi < 0 || yi >= in.height) continue;
    for (int64_t x = 0; x < width; ++x)
      if (xs[x] >= 0 && xs[x] < in.width)
        std::memcpy(&out.rgb[(size_t(y) * width + x) * 3], &in.rgb[(size_t(yi) * in.width + xs[x]) * 3], 3);
  }
  return out;
}

}  // namespace

Resample resample_from_code(int64_t code) {
  if (code < 0 || code > 5)
    fail("unknown resample code ", code, " (PIL: 0 NEAREST, 1 LANCZOS, 2 BILINEAR, 3 BICUBIC, 4 BOX, 5 HAMMING)");
  return static_cast<Resample>(code);
}

Image resize(const Image& image, int64_t width, int64_t height, Resample resample) {
  return resize(image, width, height, resample,
                {0.0f, 0.0f, static_cast<float>(image.width), static_cast<float>(image.height)});
}

Image resize(const Image& image, int64_t width, int64_t height, Resample resample, const std::array<float, 4>& box) {
  if (width <= 0 || height <= 0) fail("resize to ", width, "×", height, ": sizes must be positive");
  const bool whole = box[0] == 0 && box[1] == 0 && box[2] == float(image.width) && box[3] == float(image.height);
  if (width == image.width && height == image.height && whole) return image;
  if (resample == Resample::Nearest) {
    if (!whole) fail("resize: a box with NEAREST is not implemented");
    return resize_nearest(image, width, height);
  }
  if (box[0] < 0 || box[1] < 0 || box[2] > float(image.width) || box[3] > float(image.height) || box[2] < box[0] || box[3] < box[1])
    fail("resize: the box (", box[0], ", ", box[1], ", ", box[2], ", ", box[3], ") is not inside the ", image.width, "×",
         image.height, " image");
  const Filter filter = filter_for(resample);
  // Pillow: a pass runs where the size changes or the box is not the axis' whole length.
  const bool horizontal = width != image.width || box[0] != 0 || box[2] != float(width);
  const bool vertical = height != image.height || box[1] != 0 || box[3] != float(height);
  const Coefficients ch = precompute(static_cast<int>(image.width), box[0], box[2], static_cast<int>(width), filter);
  const Coefficients cv = precompute(static_cast<int>(image.height), box[1], box[3], static_cast<int>(height), filter);
  if (!horizontal && !vertical) return image;
  if (!horizontal) return resample_vertical(image, static_cast<int>(height), cv, 0);
  // Only the source rows the vertical pass reads go through the horizontal pass.
  const int row_first = cv.first.front();
  const int row_last = cv.first.back() + cv.count.back();
  const Image temp = resample_horizontal(image, vertical ? row_first : 0, vertical ? row_last - row_first : image.height,
                                         static_cast<int>(width), ch);
  return vertical ? resample_vertical(temp, static_cast<int>(height), cv, row_first) : temp;
}

}  // namespace mmx
