// libFuzzer: arbitrary bytes as a pytorch_model.bin (torch.save's zip + pickle) must give a state dict or
// an mmx::Error: no crash, no wrapped size read as a tensor, no stack overflow, no call of a global.
#include <string>

#include "fuzz_input.hpp"
#include "io/torch_checkpoint.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = fuzz_input_file(data, size, ".bin");
  try {
    // A tensor points into the file (or a copy): its first and last bytes must be readable (ASan checks).
    for (const auto& [name, tensor] : mmx::read_torch_state_dict(path))
      if (tensor.nbytes() > 0) {
        const auto* bytes = static_cast<const volatile unsigned char*>(tensor.raw());
        (void)bytes[0];
        (void)bytes[tensor.nbytes() - 1];
      }
  } catch (const mmx::Error&) {
  }
  return 0;
}
