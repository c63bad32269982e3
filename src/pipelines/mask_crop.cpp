// VaeImageProcessor's padding_mask_crop path (diffusers 0.30) on Pillow 9.4's integer arithmetic.
#include "pipelines/mask_crop.hpp"

#include <algorithm>

#include "mmx/error.hpp"
#include "mmx/pil_resize.hpp"

namespace mmx {
namespace {

// Image.paste(source, box=(x, y)) of an RGB image onto an RGB canvas, clipped to the canvas.
void paste(Image& canvas, const Image& source, int64_t x, int64_t y) {
  for (int64_t sy = 0; sy < source.height; ++sy) {
    const int64_t dy = y + sy;
    if (dy < 0 || dy >= canvas.height) continue;
    for (int64_t sx = 0; sx < source.width; ++sx) {
      const int64_t dx = x + sx;
      if (dx < 0 || dx >= canvas.width) continue;
      std::copy_n(&source.rgb[size_t((sy * source.width + sx) * 3)], 3, &canvas.rgb[size_t((dy * canvas.width + dx) * 3)]);
    }
  }
}

Image black(int64_t width, int64_t height) {
  Image image;
  image.width = width;
  image.height = height;
  image.rgb.assign(size_t(width * height * 3), 0);
  return image;
}

uint32_t div255(uint32_t a) {  // Pillow's DIV255: rounded a / 255
  const uint32_t t = a + 128;
  return ((t >> 8) + t) >> 8;
}

}  // namespace

uint8_t pillow_luma(const Image& image, int64_t i) {
  const uint32_t r = image.rgb[size_t(i * 3)], g = image.rgb[size_t(i * 3 + 1)], b = image.rgb[size_t(i * 3 + 2)];
  return static_cast<uint8_t>((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16);
}

CropBox mask_crop_region(const Image& mask, int64_t width, int64_t height, int64_t pad) {
  const int64_t w = mask.width, h = mask.height;
  auto column_black = [&](int64_t x) {
    for (int64_t y = 0; y < h; ++y)
      if (pillow_luma(mask, y * w + x) != 0) return false;
    return true;
  };
  auto row_black = [&](int64_t y) {
    for (int64_t x = 0; x < w; ++x)
      if (pillow_luma(mask, y * w + x) != 0) return false;
    return true;
  };
  int64_t left = 0, right = 0, top = 0, bottom = 0;
  while (left < w && column_black(left)) ++left;
  while (right < w && column_black(w - 1 - right)) ++right;
  while (top < h && row_black(top)) ++top;
  while (bottom < h && row_black(h - 1 - bottom)) ++bottom;
  int64_t x1 = std::max<int64_t>(left - pad, 0), y1 = std::max<int64_t>(top - pad, 0);
  int64_t x2 = std::min(w - right + pad, w), y2 = std::min(h - bottom + pad, h);
  if (x2 <= x1 || y2 <= y1) usage_error("the mask is all black: there is nothing to repaint");
  // Grown to the processing aspect ratio (Python floats, int() truncating, // flooring).
  const double crop_ratio = double(x2 - x1) / double(y2 - y1), ratio = double(width) / double(height);
  auto floor_div2 = [](int64_t v) { return v >= 0 ? v / 2 : -((-v + 1) / 2); };
  if (crop_ratio > ratio) {
    const double desired = double(x2 - x1) / ratio;
    const int64_t diff = static_cast<int64_t>(desired - double(y2 - y1));
    y1 -= floor_div2(diff);
    y2 += diff - floor_div2(diff);
    if (y2 >= h) {
      const int64_t over = y2 - h;
      y2 -= over, y1 -= over;
    }
    if (y1 < 0) y2 -= y1, y1 = 0;
    if (y2 >= h) y2 = h;
  } else {
    const double desired = double(y2 - y1) * ratio;
    const int64_t diff = static_cast<int64_t>(desired - double(x2 - x1));
    x1 -= floor_div2(diff);
    x2 += diff - floor_div2(diff);
    if (x2 >= w) {
      const int64_t over = x2 - w;
      x2 -= over, x1 -= over;
    }
    if (x1 < 0) x2 -= x1, x1 = 0;
    if (x2 >= w) x2 = w;
  }
  return {x1, y1, x2, y2};
}

Image crop(const Image& image, const CropBox& b) {  // Image.crop: outside the image is black
  Image out = black(b.x2 - b.x1, b.y2 - b.y1);
  for (int64_t y = 0; y < out.height; ++y)
    for (int64_t x = 0; x < out.width; ++x) {
      const int64_t sx = b.x1 + x, sy = b.y1 + y;
      if (sx < 0 || sy < 0 || sx >= image.width || sy >= image.height) continue;
      std::copy_n(&image.rgb[size_t((sy * image.width + sx) * 3)], 3, &out.rgb[size_t((y * out.width + x) * 3)]);
    }
  return out;
}

Image resize_and_fill(const Image& image, int64_t width, int64_t height) {
  const double ratio = double(width) / double(height), src_ratio = double(image.width) / double(image.height);
  const int64_t src_w = ratio < src_ratio ? width : image.width * height / image.height;
  const int64_t src_h = ratio >= src_ratio ? height : image.height * width / image.width;
  const Image resized = resize(image, src_w, src_h, Resample::Lanczos);
  Image out = black(width, height);
  paste(out, resized, width / 2 - src_w / 2, height / 2 - src_h / 2);
  const float rw = float(resized.width), rh = float(resized.height);
  // The bands: the edge rows (or columns) stretched through an empty box, with Image.resize's default filter
  // (BICUBIC: diffusers passes none there).
  if (ratio < src_ratio) {  // above and below
    const int64_t fill = height / 2 - src_h / 2;
    if (fill > 0) {
      paste(out, resize(resized, width, fill, Resample::Bicubic, {0, 0, float(width), 0}), 0, 0);
      paste(out, resize(resized, width, fill, Resample::Bicubic, {0, rh, float(width), rh}), 0, fill + src_h);
    }
  } else if (ratio > src_ratio) {  // bands left and right
    const int64_t fill = width / 2 - src_w / 2;
    if (fill > 0) {
      paste(out, resize(resized, fill, height, Resample::Bicubic, {0, 0, 0, float(height)}), 0, 0);
      paste(out, resize(resized, fill, height, Resample::Bicubic, {rw, 0, rw, float(height)}), fill + src_w, 0);
    }
  }
  return out;
}

Image resize_and_crop(const Image& image, int64_t width, int64_t height) {
  const double ratio = double(width) / double(height), src_ratio = double(image.width) / double(image.height);
  const int64_t src_w = ratio > src_ratio ? width : image.width * height / image.height;
  const int64_t src_h = ratio <= src_ratio ? height : image.height * width / image.width;
  const Image resized = resize(image, src_w, src_h, Resample::Lanczos);
  Image out = black(width, height);
  paste(out, resized, width / 2 - src_w / 2, height / 2 - src_h / 2);
  return out;
}

Image apply_overlay(const Image& mask, const Image& original, const Image& generated, const CropBox& b) {
  const int64_t width = generated.width, height = generated.height;
  const Image init = resize(original, width, height, Resample::Lanczos);
  const Image sized_mask = resize(mask, width, height, Resample::Lanczos);
  // The generated crop, resized to cover its box and pasted there on black.
  Image base = black(width, height);
  paste(base, resize_and_crop(generated, b.x2 - b.x1, b.y2 - b.y1), b.x1, b.y1);
  Image out = base;
  for (int64_t i = 0; i < width * height; ++i) {
    // The original pasted into an empty RGBa image through the inverted mask (BLEND over zeros), back to
    // RGBA (un-premultiplied), then alpha-composited over the opaque generated image.
    const uint32_t a = 255 - pillow_luma(sized_mask, i);
    if (a == 0) continue;  // the source is transparent: the generated pixel stays
    const uint32_t blend = 255 * (255 - a), out_a255 = a * 255 + blend;
    const uint32_t coef1 = a * 255 * 255 * (1u << 7) / out_a255, coef2 = 255 * (1u << 7) - coef1;
    for (int c = 0; c < 3; ++c) {
      const uint32_t premultiplied = div255(init.rgb[size_t(i * 3 + c)] * a);
      const uint32_t source = a == 255 ? premultiplied : std::min<uint32_t>(255 * premultiplied / a, 255);
      const uint32_t t = source * coef1 + uint32_t(base.rgb[size_t(i * 3 + c)]) * coef2 + (0x80u << 7);
      out.rgb[size_t(i * 3 + c)] = static_cast<uint8_t>((((t >> 8) + t) >> 8) >> 7);
    }
  }
  return out;
}

}  // namespace mmx
