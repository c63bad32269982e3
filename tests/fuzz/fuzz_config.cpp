// libFuzzer: arbitrary bytes as config.json / preprocessor_config.json must parse or raise mmx::Error.
#include <string>

#include "fuzz_input.hpp"
#include "io/json_config.hpp"
#include "mmx/image_processor.hpp"
#include "models/bert.hpp"
#include "models/clip.hpp"
#include "models/vit.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = fuzz_input_file(data, size, ".json");
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
