// Image files: PNG through libpng, JPEG through libjpeg-turbo (the decoder Pillow uses), converted to RGB
// with Pillow's rules; RGB images written as PNG with tEXt chunks (what a generated image was made from).
// libpng and libjpeg report errors by longjmp, so each coder keeps only plain data between setjmp and the
// end of its work and throws once it is back in C++.
#include <cstddef>
#include <cstdio>
// jpeglib.h needs size_t and FILE declared before it.
#include <jpeglib.h>
#include <png.h>
#include <zlib.h>

#include <cctype>
#include <csetjmp>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>

#include "mmx/error.hpp"
#include "mmx/files.hpp"
#include "mmx/image.hpp"

#include "io/image_formats.hpp"

namespace mmx {

namespace {

// ---- PNG

struct PngReader {
  const unsigned char* data;
  size_t size, pos;
  char error[256];
};

void png_read_from_memory(png_structp png, png_bytep out, png_size_t length) {
  auto* r = static_cast<PngReader*>(png_get_io_ptr(png));
  if (r->pos + length > r->size) png_error(png, "file is truncated");
  std::memcpy(out, r->data + r->pos, length);
  r->pos += length;
}

void png_on_error(png_structp png, png_const_charp message) {
  auto* r = static_cast<PngReader*>(png_get_io_ptr(png));
  std::snprintf(r->error, sizeof r->error, "%s", message);
  png_longjmp(png, 1);
}
void png_on_warning(png_structp, png_const_charp) {}

Image decode_png(const std::string& bytes, const std::string& name) {
  // IHDR is the first chunk: check the size there, before libpng reads (or allocates) anything more.
  if (bytes.size() >= 24 && bytes.compare(12, 4, "IHDR") == 0) {
    auto be32 = [&](size_t at) {
      uint32_t v = 0;
      for (size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(bytes[at + i]);
      return v;
    };
    detail::check_image_size(name, be32(16), be32(20));
  }
  PngReader reader{reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), 0, {}};
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &reader, png_on_error, png_on_warning);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  if (!png || !info) {
    png_destroy_read_struct(&png, &info, nullptr);
    fail(name, ": out of memory starting the PNG decoder");
  }
  Image image;
  std::vector<uint8_t> raw;
  std::vector<png_bytep> rows;
  volatile int channels = 0, sixteen_bit_grey = 0;
  volatile uint64_t too_big_w = 0, too_big_h = 0;
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, nullptr);
    if (too_big_w) detail::check_image_size(name, too_big_w, too_big_h);
    fail(name, ": cannot decode PNG: ", reader.error);
  }
  png_set_read_fn(png, &reader, png_read_from_memory);
  png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
  // Metadata chunks are skipped unread (RGB conversion uses none of them): libpng would otherwise allocate
  // what a text chunk's length field declares — 2 GiB for a 45-byte file — before finding the file short.
  static const png_byte kSkipped[] = "tEXt\0zTXt\0iTXt\0iCCP\0sPLT\0eXIf\0";
  png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, kSkipped, 6);
  // Any other chunk libpng holds in memory (a palette, transparency) is small; a decompressed one is capped.
  png_set_chunk_malloc_max(png, 16u << 20);
  png_read_info(png, info);
  const png_uint_32 width = png_get_image_width(png, info), height = png_get_image_height(png, info);
  if (uint64_t(width) * height > static_cast<uint64_t>(kMaxImagePixels)) {
    too_big_w = width;
    too_big_h = height;
    png_error(png, "too large");
  }
  const int color_type = png_get_color_type(png, info), bit_depth = png_get_bit_depth(png, info);
  if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);  // tRNS stays ignored, as in convert("RGB")
  if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);  // ×255, ×85, ×17
  if (bit_depth == 16) {
    // Pillow opens 16-bit grey as mode "I" (values 0..65535) and convert("RGB") clips them to 255;
    // every other 16-bit mode keeps the high byte of each sample.
    if (color_type == PNG_COLOR_TYPE_GRAY) sixteen_bit_grey = 1;
    else png_set_strip_16(png);
  }
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  channels = png_get_channels(png, info);
  const size_t row_bytes = png_get_rowbytes(png, info);
  raw.resize(row_bytes * height);
  rows.resize(height);
  for (png_uint_32 y = 0; y < height; ++y) rows[y] = raw.data() + y * row_bytes;
  png_read_image(png, rows.data());
  png_destroy_read_struct(&png, &info, nullptr);

  image.width = width;
  image.height = height;
  image.rgb.resize(size_t(width) * height * 3);
  const size_t n = size_t(width) * height;
  uint8_t* out = image.rgb.data();
  for (size_t i = 0; i < n; ++i, out += 3) {
    if (sixteen_bit_grey) {
      const unsigned v = (unsigned(raw[2 * i]) << 8) | raw[2 * i + 1];
      out[0] = out[1] = out[2] = static_cast<uint8_t>(v > 255 ? 255 : v);
    } else if (channels <= 2) {  // grey, grey + alpha
      out[0] = out[1] = out[2] = raw[i * channels];
    } else {  // RGB, RGBA (alpha dropped)
      std::memcpy(out, &raw[i * channels], 3);
    }
  }
  return image;
}

// ---- JPEG

struct JpegError {
  jpeg_error_mgr manager;
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void jpeg_on_error(j_common_ptr cinfo) {
  auto* e = reinterpret_cast<JpegError*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, e->message);
  longjmp(e->jump, 1);
}
void jpeg_on_message(j_common_ptr, int) {}  // warnings on corrupt data: libjpeg recovers, as Pillow does

// A source that fails when the data ends, where jpeg_mem_src would pad with a fake end marker:
// Pillow refuses a truncated JPEG ("image file is truncated"), so does mmx.
void source_init(j_decompress_ptr) {}
boolean source_fill(j_decompress_ptr cinfo) {
  auto* e = reinterpret_cast<JpegError*>(cinfo->err);
  std::snprintf(e->message, sizeof e->message, "file is truncated");
  longjmp(e->jump, 1);
}
void source_skip(j_decompress_ptr cinfo, long count) {
  if (count <= 0) return;
  if (static_cast<size_t>(count) > cinfo->src->bytes_in_buffer) source_fill(cinfo);
  cinfo->src->next_input_byte += count;
  cinfo->src->bytes_in_buffer -= static_cast<size_t>(count);
}
void source_term(j_decompress_ptr) {}

Image decode_jpeg(const std::string& bytes, const std::string& name) {
  jpeg_decompress_struct cinfo;
  JpegError error;
  cinfo.err = jpeg_std_error(&error.manager);
  error.manager.error_exit = jpeg_on_error;
  error.manager.emit_message = jpeg_on_message;
  Image image;
  std::vector<uint8_t> row;
  volatile uint64_t too_big_w = 0, too_big_h = 0;
  volatile bool cmyk = false;
  if (setjmp(error.jump)) {
    jpeg_destroy_decompress(&cinfo);
    if (too_big_w) detail::check_image_size(name, too_big_w, too_big_h);
    fail(name, ": cannot decode JPEG: ", error.message);
  }
  jpeg_create_decompress(&cinfo);
  jpeg_source_mgr source;
  source.init_source = source_init;
  source.fill_input_buffer = source_fill;
  source.skip_input_data = source_skip;
  source.resync_to_restart = jpeg_resync_to_restart;
  source.term_source = source_term;
  source.next_input_byte = reinterpret_cast<const JOCTET*>(bytes.data());
  source.bytes_in_buffer = bytes.size();
  cinfo.src = &source;
  jpeg_read_header(&cinfo, TRUE);
  if (uint64_t(cinfo.image_width) * cinfo.image_height > static_cast<uint64_t>(kMaxImagePixels)) {
    too_big_w = cinfo.image_width;
    too_big_h = cinfo.image_height;
    std::snprintf(error.message, sizeof error.message, "too large");
    longjmp(error.jump, 1);
  }
  if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
    cmyk = true;  // Pillow assumes Adobe's inverted CMYK for every CMYK JPEG (rawmode "CMYK;I")
    cinfo.out_color_space = JCS_CMYK;
  } else {
    cinfo.out_color_space = JCS_RGB;  // grey is replicated, YCbCr converted by libjpeg, as in Pillow
  }
  jpeg_start_decompress(&cinfo);
  image.width = cinfo.output_width;
  image.height = cinfo.output_height;
  image.rgb.resize(size_t(image.width) * image.height * 3);
  row.resize(size_t(image.width) * cinfo.output_components);
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW rows[1] = {row.data()};
    const JDIMENSION y = cinfo.output_scanline;
    jpeg_read_scanlines(&cinfo, rows, 1);
    uint8_t* out = image.rgb.data() + size_t(y) * image.width * 3;
    if (!cmyk) {
      std::memcpy(out, row.data(), size_t(image.width) * 3);
      continue;
    }
    for (int64_t x = 0; x < image.width; ++x) {  // Pillow's cmyk2rgb: (255 − K) − C·(255 − K)/255 per channel
      const uint8_t* p = &row[size_t(x) * 4];
      const int k = p[3];  // 255 − K, with K = 255 − stored value (inverted)
      for (int c = 0; c < 3; ++c) {
        const int ink = 255 - p[c];
        const int t = ink * k + 128;
        const int v = k - (((t >> 8) + t) >> 8);
        out[x * 3 + c] = static_cast<uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
      }
    }
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return image;
}

}  // namespace

Image decode_image(const std::string& bytes, const std::string& name) {
  if (bytes.empty()) fail(name, ": empty file (0 bytes), not an image");
  static const unsigned char kPng[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (bytes.size() >= 8 && std::memcmp(bytes.data(), kPng, 8) == 0) return decode_png(bytes, name);
  if (bytes.size() >= 3 && static_cast<unsigned char>(bytes[0]) == 0xff && static_cast<unsigned char>(bytes[1]) == 0xd8 &&
      static_cast<unsigned char>(bytes[2]) == 0xff)
    return decode_jpeg(bytes, name);
  if (detail::is_webp(bytes)) return detail::decode_webp(bytes, name);
  if (detail::is_gif(bytes)) return detail::decode_gif(bytes, name);
  if (detail::is_tiff(bytes)) return detail::decode_tiff(bytes, name);
  if (detail::is_bmp(bytes)) return detail::decode_bmp(bytes, name);
  throw Error(ErrorKind::Runtime, name + ": not an image file mmx reads (unrecognised format)",
              "mmx reads PNG, JPEG, WebP, GIF, TIFF and BMP; convert other formats first");
}

Image load_image(const std::string& path) { return decode_image(read_file(path), path); }

bool has_image_extension(const std::string& path) {
  const size_t dot = path.rfind('.');
  if (dot == std::string::npos || path.find('/', dot) != std::string::npos) return false;
  std::string ext = path.substr(dot + 1);
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const char* known : {"png", "jpg", "jpeg", "webp", "gif", "tif", "tiff", "bmp"})
    if (ext == known) return true;
  return false;
}

int exif_orientation(const std::string& bytes) { return detail::exif_orientation(bytes); }

// Pillow's Image.transpose methods as exif_transpose picks them: each output pixel (ox, oy) reads one
// input pixel, so one loop serves all eight cases.
Image apply_orientation(const Image& image, int orientation) {
  if (orientation <= 1 || orientation > 8) return image;
  const int64_t w = image.width, h = image.height;
  const bool swap = orientation >= 5;
  Image out;
  out.width = swap ? h : w;
  out.height = swap ? w : h;
  out.rgb.resize(image.rgb.size());
  for (int64_t oy = 0; oy < out.height; ++oy)
    for (int64_t ox = 0; ox < out.width; ++ox) {
      int64_t x = ox, y = oy;
      switch (orientation) {
        case 2: x = w - 1 - ox; break;                       // FLIP_LEFT_RIGHT
        case 3: x = w - 1 - ox, y = h - 1 - oy; break;       // ROTATE_180
        case 4: y = h - 1 - oy; break;                       // FLIP_TOP_BOTTOM
        case 5: x = oy, y = ox; break;                       // TRANSPOSE
        case 6: x = oy, y = h - 1 - ox; break;               // ROTATE_270 (a quarter turn clockwise)
        case 7: x = w - 1 - oy, y = h - 1 - ox; break;       // TRANSVERSE
        case 8: x = w - 1 - oy, y = ox; break;               // ROTATE_90 (a quarter turn anticlockwise)
      }
      std::memcpy(&out.rgb[size_t(oy * out.width + ox) * 3], &image.rgb[size_t(y * w + x) * 3], 3);
    }
  return out;
}

Image decode_image_upright(const std::string& bytes, const std::string& name) {
  return apply_orientation(decode_image(bytes, name), exif_orientation(bytes));
}

// ---- PNG encoding

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

// ---- PNG text chunks, read straight from the chunk list (libpng's reader would decode the image too).

namespace {

uint32_t big_endian32(const std::string& b, size_t at) {
  return uint32_t(uint8_t(b[at])) << 24 | uint32_t(uint8_t(b[at + 1])) << 16 | uint32_t(uint8_t(b[at + 2])) << 8 |
         uint32_t(uint8_t(b[at + 3]));
}

std::string latin1_to_utf8(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c < 0x80) out += char(c);
    else out += char(0xC0 | (c >> 6)), out += char(0x80 | (c & 0x3F));
  }
  return out;
}

// zlib data of at most 16 MiB once inflated (a text chunk; a bomb is cut off, not allocated).
std::optional<std::string> inflate_text(const std::string& data) {
  z_stream z{};
  if (inflateInit(&z) != Z_OK) return std::nullopt;
  std::string out;
  char buffer[16384];
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  int rc = Z_OK;
  while (rc == Z_OK && out.size() < (16u << 20)) {
    z.next_out = reinterpret_cast<Bytef*>(buffer);
    z.avail_out = sizeof buffer;
    rc = inflate(&z, Z_NO_FLUSH);
    out.append(buffer, sizeof buffer - z.avail_out);
  }
  inflateEnd(&z);
  if (rc != Z_STREAM_END) return std::nullopt;
  return out;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> read_png_text(const std::string& b, const std::string& name) {
  static const char kSignature[] = "\x89PNG\r\n\x1a\n";
  if (b.size() < 8 || b.compare(0, 8, kSignature, 8) != 0) fail(name, ": not a PNG file (no PNG signature)");
  std::vector<std::pair<std::string, std::string>> text;
  for (size_t at = 8; at + 12 <= b.size();) {
    const uint32_t length = big_endian32(b, at);
    const std::string type = b.substr(at + 4, 4);
    if (length > b.size() - at - 12) break;  // truncated: what came before stands
    const std::string data = b.substr(at + 8, length);
    at += 12 + size_t(length);
    if (type == "IEND") break;
    const size_t nul = data.find('\0');
    if (nul == std::string::npos || nul == 0 || nul > 79) continue;
    const std::string key = latin1_to_utf8(data.substr(0, nul));
    if (type == "tEXt") {
      text.emplace_back(key, latin1_to_utf8(data.substr(nul + 1)));
    } else if (type == "zTXt" && nul + 2 <= data.size()) {
      if (auto t = inflate_text(data.substr(nul + 2))) text.emplace_back(key, latin1_to_utf8(*t));
    } else if (type == "iTXt" && nul + 3 <= data.size()) {
      const bool compressed = data[nul + 1] != 0;
      const size_t language_end = data.find('\0', nul + 3);
      const size_t translated_end = language_end == std::string::npos ? language_end : data.find('\0', language_end + 1);
      if (translated_end == std::string::npos) continue;
      const std::string value = data.substr(translated_end + 1);
      if (!compressed) text.emplace_back(key, value);
      else if (auto t = inflate_text(value)) text.emplace_back(key, *t);
    }
  }
  return text;
}

// ---- JPEG encoding (thumbnails): libjpeg-turbo into memory; its errors longjmp back here.

namespace {
bool write_jpeg(const Image& image, int quality, unsigned char** buffer, unsigned long* size) {
  jpeg_compress_struct cinfo;
  JpegError error;
  cinfo.err = jpeg_std_error(&error.manager);
  error.manager.error_exit = jpeg_on_error;
  error.manager.emit_message = jpeg_on_message;
  if (setjmp(error.jump)) {
    jpeg_destroy_compress(&cinfo);
    return false;
  }
  jpeg_create_compress(&cinfo);
  jpeg_mem_dest(&cinfo, buffer, size);
  cinfo.image_width = static_cast<JDIMENSION>(image.width);
  cinfo.image_height = static_cast<JDIMENSION>(image.height);
  cinfo.input_components = 3;
  cinfo.in_color_space = JCS_RGB;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, quality, TRUE);
  jpeg_start_compress(&cinfo, TRUE);
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = const_cast<JSAMPROW>(image.rgb.data() + size_t(cinfo.next_scanline) * image.width * 3);
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  return true;
}
}  // namespace

std::string encode_jpeg(const Image& image, int quality) {
  if (image.width <= 0 || image.height <= 0 || image.rgb.size() != size_t(image.width * image.height * 3))
    fail("encode_jpeg: image of ", image.width, "×", image.height, " holds ", image.rgb.size(), " bytes");
  if (quality < 1 || quality > 100) usage_error("JPEG quality ", quality, " is not within 1..100");
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  const bool ok = write_jpeg(image, quality, &buffer, &size);
  std::string out = ok ? std::string(reinterpret_cast<const char*>(buffer), size) : std::string();
  std::free(buffer);
  if (!ok) fail("encode_jpeg: libjpeg failed");
  return out;
}

}  // namespace mmx

