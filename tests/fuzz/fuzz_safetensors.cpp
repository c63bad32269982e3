// libFuzzer: arbitrary bytes as a safetensors file must give a value or an mmx::Error, nothing else.
#include <unistd.h>

#include <cstdio>
#include <string>

#include "mmx/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/mmx-fuzz-" + std::to_string(getpid()) + ".safetensors";
  if (std::FILE* f = std::fopen(path.c_str(), "wb")) {
    std::fwrite(data, 1, size, f);
    std::fclose(f);
  }
  try {
    const auto file = mmx::SafetensorsFile::open(path);
    for (const auto& t : file.tensors())
      if (t.supported) file.get(t.name);
  } catch (const mmx::Error&) {
  }
  return 0;
}
