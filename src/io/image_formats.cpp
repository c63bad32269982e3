// WebP (libwebp's animation decoder, as Pillow uses it), GIF (giflib), TIFF (libtiff), BMP (read here: the
// format is a header and rows, and Pillow reads it in Python too) and the EXIF Orientation tag (libexif).
// Each converts to RGB with Pillow's convert("RGB") rules: alpha dropped, palettes looked up.
#include "io/image_formats.hpp"

#include <gif_lib.h>
#include <libexif/exif-data.h>
#include <tiffio.h>
#include <webp/decode.h>
#include <webp/demux.h>
#include <webp/encode.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "mmx/error.hpp"

#include "core/checked.hpp"

namespace mmx::detail {

void check_image_size(const std::string& name, uint64_t width, uint64_t height) {
  if (width == 0 || height == 0) fail(name, ": image has zero size (", width, "×", height, ")");
  const uint64_t pixels = checked_mul(width, height, name + ": pixel count");
  if (pixels > static_cast<uint64_t>(kMaxImagePixels))
    fail(name, ": image of ", width, "×", height, " = ", pixels, " pixels exceeds the limit of ",
         kMaxImagePixels, " (a possible decompression bomb, refused as Pillow refuses it)");
}

namespace {

uint32_t le16(const std::string& b, size_t at) {
  return uint32_t(uint8_t(b[at])) | uint32_t(uint8_t(b[at + 1])) << 8;
}
uint32_t le32(const std::string& b, size_t at) { return le16(b, at) | le16(b, at + 2) << 16; }

Image blank(const std::string& name, uint64_t width, uint64_t height) {
  check_image_size(name, width, height);
  Image image;
  image.width = static_cast<int64_t>(width);
  image.height = static_cast<int64_t>(height);
  image.rgb.assign(size_t(width) * height * 3, 0);
  return image;
}

}  // namespace

bool is_webp(const std::string& b) { return b.size() >= 12 && b.compare(0, 4, "RIFF") == 0 && b.compare(8, 4, "WEBP") == 0; }
bool is_gif(const std::string& b) { return b.size() >= 6 && (b.compare(0, 6, "GIF87a") == 0 || b.compare(0, 6, "GIF89a") == 0); }
bool is_tiff(const std::string& b) {
  return b.size() >= 4 && (b.compare(0, 4, std::string("II*\0", 4)) == 0 || b.compare(0, 4, std::string("MM\0*", 4)) == 0);
}
bool is_bmp(const std::string& b) { return b.size() >= 2 && b[0] == 'B' && b[1] == 'M'; }

// ---- WebP: WebPAnimDecoder for still and animated files alike (Pillow's _webp does the same), RGBA out.

Image decode_webp(const std::string& bytes, const std::string& name) {
  WebPBitstreamFeatures features;
  if (WebPGetFeatures(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), &features) != VP8_STATUS_OK)
    fail(name, ": cannot decode WebP: the header is damaged or truncated");
  check_image_size(name, uint64_t(std::max(features.width, 0)), uint64_t(std::max(features.height, 0)));
  WebPData data{reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()};
  WebPAnimDecoderOptions options;
  WebPAnimDecoderOptionsInit(&options);
  options.color_mode = MODE_RGBA;
  options.use_threads = 0;
  std::unique_ptr<WebPAnimDecoder, void (*)(WebPAnimDecoder*)> decoder(WebPAnimDecoderNew(&data, &options),
                                                                       WebPAnimDecoderDelete);
  WebPAnimInfo info;
  if (!decoder || !WebPAnimDecoderGetInfo(decoder.get(), &info))
    fail(name, ": cannot decode WebP: the file is damaged or truncated");
  Image image = blank(name, info.canvas_width, info.canvas_height);
  uint8_t* rgba = nullptr;
  int timestamp = 0;
  if (!WebPAnimDecoderGetNext(decoder.get(), &rgba, &timestamp))
    fail(name, ": cannot decode WebP: the image data is damaged or truncated");
  const size_t n = size_t(image.width) * image.height;
  for (size_t i = 0; i < n; ++i) std::memcpy(&image.rgb[i * 3], rgba + i * 4, 3);
  return image;
}

// ---- GIF: the first image of the file drawn on the logical screen; the screen outside it is the
// background colour, as Pillow fills it; palette entries looked up (transparency ignored, as convert("RGB")).

namespace {
struct GifSource {
  const std::string* bytes;
  size_t pos;
};
int gif_read(GifFileType* gif, GifByteType* out, int length) {
  auto* s = static_cast<GifSource*>(gif->UserData);
  const size_t n = std::min(size_t(std::max(length, 0)), s->bytes->size() - s->pos);
  std::memcpy(out, s->bytes->data() + s->pos, n);
  s->pos += n;
  return static_cast<int>(n);
}
}  // namespace

Image decode_gif(const std::string& bytes, const std::string& name) {
  GifSource source{&bytes, 0};
  int error = 0;
  std::unique_ptr<GifFileType, void (*)(GifFileType*)> gif(DGifOpen(&source, gif_read, &error), [](GifFileType* g) {
    int e = 0;
    DGifCloseFile(g, &e);
  });
  if (!gif) fail(name, ": cannot decode GIF: ", GifErrorString(error));
  auto gif_fail = [&](const char* what) {
    const char* message = GifErrorString(gif->Error);
    fail(name, ": cannot decode GIF: ", what, ": ", message ? message : "damaged or truncated");
  };
  Image image = blank(name, uint64_t(gif->SWidth), uint64_t(gif->SHeight));
  const ColorMapObject* screen_map = gif->SColorMap;
  if (screen_map && gif->SBackGroundColor < screen_map->ColorCount) {
    const GifColorType c = screen_map->Colors[gif->SBackGroundColor];
    for (size_t i = 0; i < image.rgb.size(); i += 3) {
      image.rgb[i] = c.Red;
      image.rgb[i + 1] = c.Green;
      image.rgb[i + 2] = c.Blue;
    }
  }
  for (;;) {
    GifRecordType record;
    if (DGifGetRecordType(gif.get(), &record) == GIF_ERROR) gif_fail("reading a record");
    if (record == TERMINATE_RECORD_TYPE) fail(name, ": cannot decode GIF: the file holds no image");
    if (record == EXTENSION_RECORD_TYPE) {
      int code = 0;
      GifByteType* block = nullptr;
      if (DGifGetExtension(gif.get(), &code, &block) == GIF_ERROR) gif_fail("reading an extension");
      while (block)
        if (DGifGetExtensionNext(gif.get(), &block) == GIF_ERROR) gif_fail("reading an extension");
      continue;
    }
    if (record != IMAGE_DESC_RECORD_TYPE) continue;
    if (DGifGetImageDesc(gif.get()) == GIF_ERROR) gif_fail("reading the image descriptor");
    const GifImageDesc& d = gif->Image;
    const ColorMapObject* map = d.ColorMap ? d.ColorMap : screen_map;
    if (!map) fail(name, ": cannot decode GIF: the first image has no colour table");
    if (d.Width <= 0 || d.Height <= 0) fail(name, ": cannot decode GIF: the first image is empty");
    check_image_size(name, uint64_t(d.Width), uint64_t(d.Height));
    std::vector<GifPixelType> indices(size_t(d.Width) * d.Height);
    // Interlaced images store rows in four passes: 0, 4, 8…; 4, 12…; 2, 6…; 1, 3….
    std::vector<int> order;
    if (d.Interlace) {
      static const int kStart[] = {0, 4, 2, 1}, kStep[] = {8, 8, 4, 2};
      for (int pass = 0; pass < 4; ++pass)
        for (int y = kStart[pass]; y < d.Height; y += kStep[pass]) order.push_back(y);
    } else {
      for (int y = 0; y < d.Height; ++y) order.push_back(y);
    }
    for (int y : order)
      if (DGifGetLine(gif.get(), &indices[size_t(y) * d.Width], d.Width) == GIF_ERROR) gif_fail("reading pixels");
    for (int y = 0; y < d.Height; ++y) {
      const int sy = d.Top + y;
      if (sy < 0 || sy >= image.height) continue;
      for (int x = 0; x < d.Width; ++x) {
        const int sx = d.Left + x;
        if (sx < 0 || sx >= image.width) continue;
        const int index = indices[size_t(y) * d.Width + x];
        const GifColorType c = index < map->ColorCount ? map->Colors[index] : GifColorType{0, 0, 0};
        uint8_t* out = &image.rgb[(size_t(sy) * image.width + sx) * 3];
        out[0] = c.Red;
        out[1] = c.Green;
        out[2] = c.Blue;
      }
    }
    return image;
  }
}

// ---- TIFF: libtiff's RGBA interface (every photometric and compression libtiff reads), then the
// Orientation tag applied, as Pillow's TiffImageFile.load_end applies it on open (so exif_orientation
// reports 1 for a TIFF: Pillow 9.4's exif_transpose would turn it a second time).

namespace {
struct TiffSource {
  const std::string* bytes;
  toff_t pos;
};
tsize_t tiff_read(thandle_t h, tdata_t out, tsize_t size) {
  auto* s = static_cast<TiffSource*>(h);
  if (s->pos >= s->bytes->size()) return 0;
  const size_t n = std::min(size_t(size), size_t(s->bytes->size() - s->pos));
  std::memcpy(out, s->bytes->data() + s->pos, n);
  s->pos += n;
  return tsize_t(n);
}
tsize_t tiff_write(thandle_t, tdata_t, tsize_t) { return -1; }
toff_t tiff_seek(thandle_t h, toff_t offset, int whence) {
  auto* s = static_cast<TiffSource*>(h);
  const toff_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? s->pos : s->bytes->size();
  s->pos = base + offset;
  return s->pos;
}
int tiff_close(thandle_t) { return 0; }
toff_t tiff_size(thandle_t h) { return static_cast<TiffSource*>(h)->bytes->size(); }
int tiff_map(thandle_t, tdata_t*, toff_t*) { return 0; }
void tiff_unmap(thandle_t, tdata_t, toff_t) {}

thread_local std::string tiff_last_error;
void tiff_on_error(const char*, const char* format, va_list args) {
  char message[512];
  std::vsnprintf(message, sizeof message, format, args);
  tiff_last_error = message;
}
void tiff_on_warning(const char*, const char*, va_list) {}

TIFF* open_tiff(TiffSource* source) {
  static const bool handlers = [] {
    TIFFSetErrorHandler(tiff_on_error);
    TIFFSetWarningHandler(tiff_on_warning);
    return true;
  }();
  (void)handlers;
  return TIFFClientOpen("memory", "rm", source, tiff_read, tiff_write, tiff_seek, tiff_close, tiff_size, tiff_map,
                        tiff_unmap);
}
}  // namespace

Image decode_tiff(const std::string& bytes, const std::string& name) {
  TiffSource source{&bytes, 0};
  tiff_last_error.clear();
  std::unique_ptr<TIFF, void (*)(TIFF*)> tif(open_tiff(&source), TIFFClose);
  if (!tif) fail(name, ": cannot decode TIFF: ", tiff_last_error.empty() ? "damaged header" : tiff_last_error);
  uint32_t width = 0, height = 0;
  uint16_t orientation = ORIENTATION_TOPLEFT;
  TIFFGetField(tif.get(), TIFFTAG_IMAGEWIDTH, &width);
  TIFFGetField(tif.get(), TIFFTAG_IMAGELENGTH, &height);
  TIFFGetFieldDefaulted(tif.get(), TIFFTAG_ORIENTATION, &orientation);
  Image image = blank(name, width, height);
  char message[1024] = "";
  if (!TIFFRGBAImageOK(tif.get(), message)) fail(name, ": cannot decode TIFF: ", message);
  std::vector<uint32_t> raster(size_t(width) * height);
  // Asking for the file's own orientation makes libtiff copy rows as stored, with no flip.
  if (!TIFFReadRGBAImageOriented(tif.get(), width, height, raster.data(), orientation, 1))
    fail(name, ": cannot decode TIFF: ", tiff_last_error.empty() ? "damaged or truncated" : tiff_last_error);
  for (size_t i = 0; i < raster.size(); ++i) {
    image.rgb[i * 3] = uint8_t(TIFFGetR(raster[i]));
    image.rgb[i * 3 + 1] = uint8_t(TIFFGetG(raster[i]));
    image.rgb[i * 3 + 2] = uint8_t(TIFFGetB(raster[i]));
  }
  return apply_orientation(image, orientation);
}

// ---- BMP: Windows (BITMAPINFOHEADER and its V4/V5 extensions) and OS/2 headers; 1/4/8-bit palettes,
// 16/24/32-bit pixels with their default or BI_BITFIELDS masks, as Pillow's BmpImagePlugin reads them.

Image decode_bmp(const std::string& b, const std::string& name) {
  if (b.size() < 26) fail(name, ": cannot decode BMP: the header is truncated");
  const uint32_t data_offset = le32(b, 10), header_size = le32(b, 14);
  int64_t width = 0, height = 0;
  uint32_t bits = 0, compression = 0, colors = 0, palette_entry = 4;
  if (header_size == 12) {  // OS/2 1.x: 16-bit sizes, 3-byte palette entries
    width = le16(b, 18);
    height = le16(b, 20);
    bits = le16(b, 24);
    palette_entry = 3;
  } else if (header_size >= 40 && b.size() >= 14 + size_t(header_size)) {
    width = static_cast<int32_t>(le32(b, 18));
    height = static_cast<int32_t>(le32(b, 22));
    bits = le16(b, 28);
    compression = le32(b, 30);
    colors = le32(b, 46);
  } else {
    fail(name, ": cannot decode BMP: unsupported or truncated header of ", header_size, " bytes");
  }
  const bool top_down = height < 0;
  if (height < 0) height = -height;
  if (width <= 0) fail(name, ": cannot decode BMP: width ", width);
  Image image = blank(name, uint64_t(width), uint64_t(height));
  uint32_t masks[3] = {0, 0, 0};
  if (compression == 3 || compression == 6) {  // BI_BITFIELDS (masks after a 40-byte header or inside V4/V5)
    if (b.size() < 14 + 40 + 12) fail(name, ": cannot decode BMP: the bit masks are truncated");
    for (int c = 0; c < 3; ++c) masks[c] = le32(b, 54 + 4 * c);
  } else if (compression != 0) {
    fail(name, ": cannot decode BMP: compression ", compression, " (RLE, JPEG or PNG inside BMP) is not supported");
  } else if (bits == 16) {
    masks[0] = 0x7c00, masks[1] = 0x03e0, masks[2] = 0x001f;  // 5-5-5
  } else if (bits == 32) {
    masks[0] = 0xff0000, masks[1] = 0xff00, masks[2] = 0xff;
  }
  if (bits != 1 && bits != 4 && bits != 8 && bits != 16 && bits != 24 && bits != 32)
    fail(name, ": cannot decode BMP: ", bits, " bits per pixel");
  std::vector<uint8_t> palette;  // RGB triples
  if (bits <= 8) {
    const uint32_t count = colors ? std::min<uint32_t>(colors, 1u << bits) : 1u << bits;
    const size_t at = 14 + header_size + (compression == 3 ? 12 : 0);
    for (uint32_t i = 0; i < count; ++i) {
      const size_t p = at + size_t(i) * palette_entry;
      if (p + 3 > b.size()) fail(name, ": cannot decode BMP: the palette is truncated");
      palette.insert(palette.end(), {uint8_t(b[p + 2]), uint8_t(b[p + 1]), uint8_t(b[p])});
    }
  }
  const size_t stride = (size_t(width) * bits + 31) / 32 * 4;
  if (data_offset > b.size() || (b.size() - data_offset) / stride < size_t(height))
    fail(name, ": cannot decode BMP: the pixel data is truncated (", b.size(), " bytes for ", width, "×", height,
         " at ", bits, " bits)");
  auto channel = [](uint32_t pixel, uint32_t mask) -> uint8_t {
    if (!mask) return 0;
    const int shift = __builtin_ctz(mask);
    const uint32_t max = mask >> shift;
    return uint8_t(((pixel & mask) >> shift) * 255 / max);
  };
  for (int64_t y = 0; y < height; ++y) {
    const uint8_t* row = reinterpret_cast<const uint8_t*>(b.data()) + data_offset + size_t(top_down ? y : height - 1 - y) * stride;
    uint8_t* out = &image.rgb[size_t(y) * width * 3];
    for (int64_t x = 0; x < width; ++x, out += 3) {
      if (bits <= 8) {
        const uint32_t per_byte = 8 / bits;
        const uint32_t index = (row[x / per_byte] >> ((per_byte - 1 - x % per_byte) * bits)) & ((1u << bits) - 1);
        if (size_t(index) * 3 + 2 < palette.size()) std::memcpy(out, &palette[size_t(index) * 3], 3);
        else out[0] = out[1] = out[2] = 0;
      } else if (bits == 24) {
        out[0] = row[x * 3 + 2], out[1] = row[x * 3 + 1], out[2] = row[x * 3];
      } else {
        const uint32_t pixel = bits == 16 ? uint32_t(row[x * 2]) | uint32_t(row[x * 2 + 1]) << 8
                                          : uint32_t(row[x * 4]) | uint32_t(row[x * 4 + 1]) << 8 |
                                                uint32_t(row[x * 4 + 2]) << 16 | uint32_t(row[x * 4 + 3]) << 24;
        for (int c = 0; c < 3; ++c) out[c] = channel(pixel, masks[c]);
      }
    }
  }
  return image;
}

// ---- EXIF Orientation

namespace {

int orientation_from_exif_block(const unsigned char* data, size_t size) {
  std::unique_ptr<ExifData, void (*)(ExifData*)> exif(exif_data_new(), exif_data_unref);
  if (!exif) return 1;
  exif_data_unset_option(exif.get(), EXIF_DATA_OPTION_FOLLOW_SPECIFICATION);
  exif_data_load_data(exif.get(), data, static_cast<unsigned int>(std::min<size_t>(size, 0xffffffffu)));
  ExifEntry* entry = exif_content_get_entry(exif->ifd[EXIF_IFD_0], EXIF_TAG_ORIENTATION);
  if (!entry || entry->format != EXIF_FORMAT_SHORT || entry->components < 1 || entry->size < 2) return 1;
  const int value = exif_get_short(entry->data, exif_data_get_byte_order(exif.get()));
  return value >= 1 && value <= 8 ? value : 1;
}

// A raw TIFF-structured EXIF block (PNG eXIf, WebP EXIF) as libexif takes it: behind "Exif\0\0".
int orientation_from_tiff_block(const char* data, size_t size) {
  std::string block = size >= 6 && std::memcmp(data, "Exif\0\0", 6) == 0 ? std::string(data, size)
                                                                           : std::string("Exif\0\0", 6) + std::string(data, size);
  return orientation_from_exif_block(reinterpret_cast<const unsigned char*>(block.data()), block.size());
}

uint32_t be32(const std::string& b, size_t at) {
  return uint32_t(uint8_t(b[at])) << 24 | uint32_t(uint8_t(b[at + 1])) << 16 | uint32_t(uint8_t(b[at + 2])) << 8 |
         uint32_t(uint8_t(b[at + 3]));
}

}  // namespace

int exif_orientation(const std::string& bytes) {
  if (bytes.size() >= 3 && uint8_t(bytes[0]) == 0xff && uint8_t(bytes[1]) == 0xd8) {
    // JPEG: libexif finds the APP1 "Exif" segment among the markers itself.
    return orientation_from_exif_block(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  }
  if (bytes.size() >= 8 && bytes.compare(1, 3, "PNG") == 0) {  // the eXIf chunk, before IDAT
    for (size_t at = 8; at + 8 <= bytes.size();) {
      const uint32_t length = be32(bytes, at);
      const std::string type = bytes.substr(at + 4, 4);
      if (type == "IDAT" || type == "IEND" || size_t(length) > bytes.size() - at - 8) break;
      if (type == "eXIf") return orientation_from_tiff_block(bytes.data() + at + 8, length);
      at += size_t(length) + 12;
    }
    return 1;
  }
  if (is_webp(bytes)) {  // RIFF chunks; EXIF holds the TIFF block
    for (size_t at = 12; at + 8 <= bytes.size();) {
      const uint32_t length = le32(bytes, at + 4);
      if (size_t(length) > bytes.size() - at - 8) break;
      if (bytes.compare(at, 4, "EXIF") == 0) return orientation_from_tiff_block(bytes.data() + at + 8, length);
      at += 8 + size_t(length) + (length & 1);
    }
    return 1;
  }
  return 1;
}

}  // namespace mmx::detail

namespace mmx {

std::string encode_webp(const Image& image, int quality) {
  if (image.width <= 0 || image.height <= 0 || image.width > WEBP_MAX_DIMENSION || image.height > WEBP_MAX_DIMENSION)
    fail("cannot write a ", image.width, "×", image.height, " image as WebP (at most ", WEBP_MAX_DIMENSION, " pixels a side)");
  if (quality < 0 || quality > 100) usage_error("WebP quality must be 0 to 100, got ", quality);
  uint8_t* out = nullptr;
  const int stride = static_cast<int>(image.width * 3);
  const size_t size = quality == 100
                          ? WebPEncodeLosslessRGB(image.rgb.data(), int(image.width), int(image.height), stride, &out)
                          : WebPEncodeRGB(image.rgb.data(), int(image.width), int(image.height), stride, float(quality), &out);
  if (size == 0 || !out) fail("libwebp could not encode a ", image.width, "×", image.height, " image");
  std::string bytes(reinterpret_cast<const char*>(out), size);
  WebPFree(out);
  return bytes;
}

}  // namespace mmx
