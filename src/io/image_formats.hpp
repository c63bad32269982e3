// The image formats beyond PNG and JPEG (src/io/image_formats.cpp), and EXIF orientation: what
// decode_image (src/io/image.cpp) dispatches to by the file's signature.
#pragma once
#include <cstdint>
#include <string>

#include "mmx/image.hpp"

namespace mmx::detail {

// Fails when width × height is zero or over kMaxImagePixels (Pillow's decompression-bomb limit).
void check_image_size(const std::string& name, uint64_t width, uint64_t height);

bool is_webp(const std::string& bytes);
bool is_gif(const std::string& bytes);
bool is_tiff(const std::string& bytes);
bool is_bmp(const std::string& bytes);

Image decode_webp(const std::string& bytes, const std::string& name);  // the first frame of an animation
Image decode_gif(const std::string& bytes, const std::string& name);   // the first frame
Image decode_tiff(const std::string& bytes, const std::string& name);  // the first page, turned upright
Image decode_bmp(const std::string& bytes, const std::string& name);

// The EXIF Orientation tag (1..8) of a JPEG, PNG (eXIf) or WebP (EXIF chunk) file; 1 when it has none or
// it cannot be read (a damaged EXIF block never fails the image, as in Pillow), and for TIFF, whose
// decoder applies its tag already.
int exif_orientation(const std::string& bytes);

}  // namespace mmx::detail
