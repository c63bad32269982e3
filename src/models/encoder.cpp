#include "models/encoder.hpp"

#include "mmx/error.hpp"

namespace mmx {

Tensor TextEncoder::project(const Tensor&) const { fail("this text encoder has no projection into a joint space"); }
Tensor VisionEncoder::project(const Tensor&) const { fail("this vision encoder has no projection into a joint space"); }

}  // namespace mmx
