// Images (src/io/image.cpp): decoding to RGB exactly as Pillow's Image.open(path).convert("RGB"), and
// RGB images encoded as PNG.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace mmx {

struct Image {
  int64_t width = 0, height = 0;
  std::vector<uint8_t> rgb;  // height × width × 3, row-major
};

// PNG (1–16 bit; grey, grey+alpha, palette, RGB, RGBA) and JPEG (baseline, progressive, grey, CMYK).
// Converted as Pillow converts to "RGB": alpha dropped (not composited), grey replicated, palette
// looked up, 16-bit grey clipped to 255 (Pillow's mode "I"), other 16-bit samples' high byte. EXIF
// orientation is not applied (Hugging Face does not). Images over Pillow's decompression-bomb limit
// (178,956,970 pixels) are refused from the header, before any allocation.
Image load_image(const std::string& path);
Image decode_image(const std::string& bytes, const std::string& name);
// An RGB image as PNG bytes, with UTF-8 text chunks (key, text) such as the prompt of a generated image.
std::string encode_png(const Image& image, const std::vector<std::pair<std::string, std::string>>& text = {});

constexpr int64_t kMaxImagePixels = 178956970;  // Pillow: 2 × MAX_IMAGE_PIXELS raises DecompressionBombError

}  // namespace mmx
