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

// PNG (1–16 bit; grey, grey+alpha, palette, RGB, RGBA), JPEG (baseline, progressive, grey, CMYK), WebP
// (lossy, lossless, the first frame of an animation), GIF (the first frame), TIFF (the first page; every
// compression and photometric libtiff reads; its Orientation tag applied, as Pillow's TIFF reader does)
// and BMP (1/4/8-bit palettes, 16/24/32-bit, bit fields).
// Converted as Pillow converts to "RGB": alpha dropped (not composited), grey replicated, palette
// looked up, 16-bit grey clipped to 255 (Pillow's mode "I"), other 16-bit samples' high byte. EXIF
// orientation is not applied (Hugging Face does not). Images over Pillow's decompression-bomb limit
// (178,956,970 pixels) are refused from the header, before any allocation.
Image load_image(const std::string& path);
// Whether a file name ends in an extension of the formats above (.png .jpg .jpeg .webp .gif .tif .tiff
// .bmp, any case): what a folder of photos is filtered by.
bool has_image_extension(const std::string& path);
Image decode_image(const std::string& bytes, const std::string& name);
// An RGB image as PNG bytes, with UTF-8 text chunks (key, text) such as the prompt of a generated image.
// The EXIF Orientation tag (1..8; 1 when absent or unreadable) of a JPEG, PNG or WebP file (a TIFF's is
// applied when it is decoded).
int exif_orientation(const std::string& bytes);
// Pillow's ImageOps.exif_transpose: the image as a viewer shows it (orientation 6: a quarter turn clockwise).
Image apply_orientation(const Image& image, int orientation);
// decode_image, then apply_orientation with the file's own tag: what a photo collection indexes, since a
// phone's portrait photo is stored sideways. The Hugging Face processors (and so the lab) do not do this.
Image decode_image_upright(const std::string& bytes, const std::string& name);
// An RGB image as baseline JPEG bytes (libjpeg-turbo) at quality 1..100: thumbnails.
std::string encode_jpeg(const Image& image, int quality = 85);
// WebP at `quality` 0–100 (lossy, libwebp's WebPEncodeRGB), or lossless at 100 as Pillow's lossless=True.
std::string encode_webp(const Image& image, int quality = 80);
std::string encode_png(const Image& image, const std::vector<std::pair<std::string, std::string>>& text = {});
// The text chunks of PNG bytes, in file order: tEXt (Latin-1, returned as UTF-8), zTXt and iTXt (UTF-8,
// compressed or not). A file that is not a PNG is an error naming `name`; broken chunks after the
// header end the list (what a viewer shows of a damaged file).
std::vector<std::pair<std::string, std::string>> read_png_text(const std::string& bytes, const std::string& name);

constexpr int64_t kMaxImagePixels = 178956970;  // Pillow: 2 × MAX_IMAGE_PIXELS raises DecompressionBombError

}  // namespace mmx
