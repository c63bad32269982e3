// libFuzzer: arbitrary bytes as an image file must decode or raise mmx::Error; decoded images go
// through both Hugging Face processors.
#include <string>

#include "mmx/image_processor.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const mmx::Image image = mmx::decode_image(std::string(reinterpret_cast<const char*>(data), size), "fuzz");
    if (image.width * image.height <= 4096 * 4096) {
      mmx::preprocess_image(image, mmx::ImageProcessorConfig::defaults("ViTImageProcessor"));
      mmx::preprocess_image(image, mmx::ImageProcessorConfig::defaults("CLIPImageProcessor"));
    }
  } catch (const mmx::Error&) {
  }
  return 0;
}
