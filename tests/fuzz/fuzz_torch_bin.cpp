// libFuzzer: arbitrary bytes as a pytorch_model.bin (torch.save's zip + pickle) must give a state dict or
// an mmx::Error: no crash, no wrapped size read as a tensor, no stack overflow, no call of a global.
#include <unistd.h>

#include <cstdio>
#include <string>

#include "io/torch_checkpoint.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/mmx-fuzz-" + std::to_string(getpid()) + ".bin";
  if (std::FILE* f = std::fopen(path.c_str(), "wb")) {
    std::fwrite(data, 1, size, f);
    std::fclose(f);
  }
  try {
    for (const auto& [name, tensor] : mmx::read_torch_state_dict(path))
      if (tensor.numel() > 0) (void)tensor.raw();  // a tensor points into the file: reading its first byte must be safe
  } catch (const mmx::Error&) {
  }
  return 0;
}
