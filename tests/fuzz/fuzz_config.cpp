// libFuzzer: arbitrary bytes as config.json / preprocessor_config.json must parse or raise mmx::Error.
#include <unistd.h>

#include <cstdio>
#include <string>

#include "io/json_config.hpp"
#include "mmx/image_processor.hpp"
#include "models/bert.hpp"
#include "models/clip.hpp"
#include "models/vit.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/mmx-fuzz-" + std::to_string(getpid()) + ".json";
  if (std::FILE* f = std::fopen(path.c_str(), "wb")) {
    std::fwrite(data, 1, size, f);
    std::fclose(f);
  }
  try {
    const mmx::JsonObject json = mmx::JsonObject::load(path);
    try { mmx::BertConfig::from_json(json); } catch (const mmx::Error&) {}
    try { mmx::ViTConfig::from_json(json); } catch (const mmx::Error&) {}
    try { mmx::CLIPConfig::from_json(json); } catch (const mmx::Error&) {}
    try { mmx::ImageProcessorConfig::load(path, "ViTImageProcessor"); } catch (const mmx::Error&) {}
  } catch (const mmx::Error&) {
  }
  return 0;
}
