// libFuzzer: arbitrary bytes as a safetensors file, and as a LoRA adapter file (its key formats, variants,
// pairs and shapes), must give a value or an mmx::Error, nothing else.
#include <string>

#include "fuzz_input.hpp"
#include "mmx/safetensors.hpp"
#include "models/lora.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = fuzz_input_file(data, size, ".safetensors");
  try {
    const auto file = mmx::SafetensorsFile::open(path);
    for (const auto& t : file.tensors())
      if (t.supported) file.get(t.name);
  } catch (const mmx::Error&) {
  }
  try {
    mmx::LoraFile::open(path);
  } catch (const mmx::Error&) {
  }
  return 0;
}
