// MMX_TEST_DEVICE=cuda (and MMX_TEST_DTYPE=f16|bf16|f32) places every model the suite loads on that
// device: the golden tests then check the CUDA backend against the same references (scripts/gpu-check.sh).
#include <cstdlib>

#include "mmx/runtime.hpp"

namespace {

struct PlacementFromEnvironment {
  PlacementFromEnvironment() {
    const char* device = std::getenv("MMX_TEST_DEVICE");
    const char* dtype = std::getenv("MMX_TEST_DTYPE");
    if (!device && !dtype) return;
    mmx::Placement p;
    if (device) p.device = mmx::device_from_name(device);
    if (dtype) p.dtype = mmx::compute_dtype_from_name(dtype);
    mmx::set_placement(p);
  }
};
const PlacementFromEnvironment placement_from_environment;

}  // namespace
