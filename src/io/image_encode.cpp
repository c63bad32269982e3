// RGB images to PNG through libpng, with tEXt chunks (what a generated image was made from). libpng
// reports errors by longjmp, so the writer keeps only plain data across it.
#include <png.h>

#include <csetjmp>
#include <string>
#include <vector>

#include "mmx/error.hpp"
#include "mmx/image.hpp"

namespace mmx {

namespace {
void append_png_bytes(png_structp png, png_bytep data, png_size_t length) {
  static_cast<std::string*>(png_get_io_ptr(png))->append(reinterpret_cast<const char*>(data), length);
}
void flush_nothing(png_structp) {}

// Only plain data lives across the setjmp; returns false when libpng failed.
bool write_png(std::string* out, png_bytep* rows, png_uint_32 width, png_uint_32 height, png_text* text, int n_text) {
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  if (!png || !info || setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    return false;
  }
  png_set_write_fn(png, out, append_png_bytes, flush_nothing);
  png_set_IHDR(png, info, width, height, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  if (n_text > 0) png_set_text(png, info, text, n_text);
  png_set_rows(png, info, rows);
  png_write_png(png, info, PNG_TRANSFORM_IDENTITY, nullptr);
  png_destroy_write_struct(&png, &info);
  return true;
}

}  // namespace

std::string encode_png(const Image& image, const std::vector<std::pair<std::string, std::string>>& text) {
  if (image.width <= 0 || image.height <= 0 || image.rgb.size() != size_t(image.width * image.height * 3))
    fail("encode_png: image of ", image.width, "×", image.height, " holds ", image.rgb.size(), " bytes");
  std::vector<png_text> chunks(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    chunks[i] = png_text{};
    chunks[i].compression = PNG_ITXT_COMPRESSION_NONE;  // iTXt: UTF-8 text (prompts are not Latin-1)
    chunks[i].key = const_cast<char*>(text[i].first.c_str());
    chunks[i].text = const_cast<char*>(text[i].second.c_str());
    chunks[i].itxt_length = text[i].second.size();
  }
  std::vector<png_bytep> rows(static_cast<size_t>(image.height));
  for (int64_t y = 0; y < image.height; ++y)
    rows[size_t(y)] = const_cast<png_bytep>(image.rgb.data() + y * image.width * 3);
  std::string out;
  if (!write_png(&out, rows.data(), static_cast<png_uint_32>(image.width), static_cast<png_uint_32>(image.height),
                 chunks.data(), static_cast<int>(chunks.size())))
    fail("encode_png: libpng failed");
  return out;
}

}  // namespace mmx
