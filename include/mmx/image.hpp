// Images: decoding to RGB exactly as Pillow's Image.open(path).convert("RGB"), Pillow-exact resizing,
// and Hugging Face's image processors (ViTImageProcessor, CLIPImageProcessor) → pixel_values.
#pragma once
#include <cstdint>
#include <utility>
#include <string>
#include <vector>

#include "mmx/tensor.hpp"

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

// Pillow's resampling filters, with Pillow's codes (PIL.Image.Resampling).
enum class Resample { Nearest = 0, Lanczos = 1, Bilinear = 2, Bicubic = 3, Box = 4, Hamming = 5 };
Resample resample_from_code(int64_t code);

// Image.resize((width, height), resample, reducing_gap=None) on an RGB image, to the bit.
Image resize(const Image& image, int64_t width, int64_t height, Resample resample);

// Command-line image arguments → files: a folder gives its .png/.jpg/.jpeg files (sorted), a pattern
// with * ? [ is expanded (sorted), anything else is taken as a path. No match is an error.
std::vector<std::string> expand_image_paths(const std::vector<std::string>& args);

constexpr int64_t kMaxImagePixels = 178956970;  // Pillow: 2 × MAX_IMAGE_PIXELS raises DecompressionBombError

}  // namespace mmx
