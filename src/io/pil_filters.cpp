// Pillow 9.4's ImagingGaussianBlur / ImagingBoxBlur: the box radius from σ² = r² / 3 in float32, then per
// line a running sum of the window with both edge pixels repeated beyond the image, the window's whole
// pixels weighted by ww = 2²⁴ / (2·radius + 1) and its two fractional ends by fw, rounded from 8.24.
#include "mmx/pil_filters.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "mmx/error.hpp"

namespace mmx {
namespace {

// One line of `n` samples at `stride` apart, blurred in place (through a copy of the input line).
void box_blur_line(uint8_t* line, int64_t n, int64_t stride, int radius, uint32_t ww, uint32_t fw, std::vector<uint8_t>& in) {
  in.resize(static_cast<size_t>(n));
  for (int64_t x = 0; x < n; ++x) in[size_t(x)] = line[x * stride];
  const int64_t last = n - 1;
  const int64_t edge_a = std::min<int64_t>(radius + 1, n), edge_b = std::max<int64_t>(n - radius - 1, 0);
  auto at = [&](int64_t x) { return static_cast<uint32_t>(in[size_t(x)]); };
  // The window sum for the pixel before the first: the first pixel repeated radius + 1 times, the line's
  // start, and the last pixel repeated where the radius reaches past the end.
  uint32_t acc = at(0) * static_cast<uint32_t>(radius + 1);
  for (int64_t x = 0; x < edge_a - 1; ++x) acc += at(x);
  acc += at(last) * static_cast<uint32_t>(radius - edge_a + 1);
  auto emit = [&](int64_t x, int64_t remove, int64_t add, int64_t left, int64_t right) {
    acc += at(add) - at(remove);  // unsigned arithmetic, as Pillow's UINT32
    const uint32_t bulk = acc * ww + (at(left) + at(right)) * fw;
    line[x * stride] = static_cast<uint8_t>((bulk + (1u << 23)) >> 24);
  };
  if (edge_a <= edge_b) {
    for (int64_t x = 0; x < edge_a; ++x) emit(x, 0, x + radius, 0, x + radius + 1);
    for (int64_t x = edge_a; x < edge_b; ++x) emit(x, x - radius - 1, x + radius, x - radius - 1, x + radius + 1);
    for (int64_t x = edge_b; x <= last; ++x) emit(x, x - radius - 1, last, x - radius - 1, last);
  } else {
    for (int64_t x = 0; x < edge_b; ++x) emit(x, 0, x + radius, 0, x + radius + 1);
    for (int64_t x = edge_b; x < edge_a; ++x) emit(x, 0, last, 0, last);
    for (int64_t x = edge_a; x <= last; ++x) emit(x, x - radius - 1, last, x - radius - 1, last);
  }
}

}  // namespace

Image gaussian_blur(const Image& image, float r) {
  if (!(r >= 0) || !std::isfinite(r)) usage_error("a blur radius is a finite number ≥ 0, got ", r);
  if (r == 0) return image;
  constexpr int kPasses = 3;
  const float sigma2 = r * r / kPasses;
  const float L = static_cast<float>(std::sqrt(12.0 * double(sigma2) + 1.0));
  const float l = static_cast<float>(std::floor((double(L) - 1.0) / 2.0));
  float a = (2 * l + 1) * (l * (l + 1) - 3 * sigma2);
  a /= 6 * (sigma2 - (l + 1) * (l + 1));
  const float box = l + a;
  const int radius = static_cast<int>(box);
  const uint32_t ww = static_cast<uint32_t>(static_cast<float>(1 << 24) / (box * 2 + 1));
  const uint32_t fw = ((1u << 24) - static_cast<uint32_t>(radius * 2 + 1) * ww) / 2;
  Image out = image;
  std::vector<uint8_t> scratch;
  const int64_t w = image.width, h = image.height;
  for (int64_t c = 0; c < 3; ++c) {
    uint8_t* base = out.rgb.data() + c;
    for (int pass = 0; pass < kPasses; ++pass)  // rows
      for (int64_t y = 0; y < h; ++y) box_blur_line(base + y * w * 3, w, 3, radius, ww, fw, scratch);
    for (int pass = 0; pass < kPasses; ++pass)  // columns (Pillow transposes, blurs rows, transposes back)
      for (int64_t x = 0; x < w; ++x) box_blur_line(base + x * 3, h, w * 3, radius, ww, fw, scratch);
  }
  return out;
}

}  // namespace mmx
