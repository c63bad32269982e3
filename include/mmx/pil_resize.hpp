// Pillow's resampling filters, reproduced bit for bit (src/io/pil_resize.cpp).
#pragma once
#include <array>
#include <cstdint>

#include "mmx/image.hpp"

namespace mmx {

// Pillow's resampling filters, with Pillow's codes (PIL.Image.Resampling).
enum class Resample { Nearest = 0, Lanczos = 1, Bilinear = 2, Bicubic = 3, Box = 4, Hamming = 5 };
Resample resample_from_code(int64_t code);

// Image.resize((width, height), resample, reducing_gap=None) on an RGB image, to the bit.
Image resize(const Image& image, int64_t width, int64_t height, Resample resample);
// Image.resize(size, resample, box=(x0, y0, x1, y1)): the source region box (float, as Pillow takes it; it
// may be empty along an axis, which stretches the edge the filter sees there) resized to width × height.
Image resize(const Image& image, int64_t width, int64_t height, Resample resample, const std::array<float, 4>& box);

}  // namespace mmx
