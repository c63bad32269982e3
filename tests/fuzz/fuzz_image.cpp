// libFuzzer: arbitrary bytes as an image file (PNG, JPEG, WebP, GIF, TIFF, BMP) must decode or raise
// mmx::Error; their EXIF orientation is read and applied; decoded images go through both processors. The
// PNG text chunks are read too, and a "parameters" chunk parsed as a generated image's parameters.
#include <string>

#include "mmx/generation_parameters.hpp"
#include "mmx/image_processor.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  try {
    for (const auto& [key, text] : mmx::read_png_text(bytes, "fuzz"))
      if (key == "parameters") {
        try {
          mmx::GenerationParameters::parse(text, "fuzz");
        } catch (const mmx::Error&) {
        }
      }
  } catch (const mmx::Error&) {
  }
  try {
    // The EXIF reader runs on any bytes, even those that do not decode.
    const int orientation = mmx::exif_orientation(bytes);
    if (orientation < 1 || orientation > 8) __builtin_trap();
    const mmx::Image image = mmx::apply_orientation(mmx::decode_image(bytes, "fuzz"), orientation);
    if (image.width * image.height <= 4096 * 4096) {
      mmx::preprocess_image(image, mmx::ImageProcessorConfig::defaults("ViTImageProcessor"));
      mmx::preprocess_image(image, mmx::ImageProcessorConfig::defaults("CLIPImageProcessor"));
    }
  } catch (const mmx::Error&) {
  }
  return 0;
}
