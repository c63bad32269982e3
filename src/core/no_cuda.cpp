// Linked instead of the CUDA backend when the build has none (MMX_CUDA=OFF or no nvcc).
#include "core/device_memory.hpp"

namespace mmx::device {

const Memory* cuda_memory() { return nullptr; }
bool cuda_device_present() { return false; }

}  // namespace mmx::device

#include "backend/backend.hpp"

namespace mmx {
const OpTable* cuda_op_table() { return nullptr; }
}  // namespace mmx
