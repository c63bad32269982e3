#include "pipelines/torch_device_random.hpp"

#include "backend/ops.hpp"

namespace mmx {

Tensor TorchDeviceGenerator::randn(const Shape& shape, DType dtype) {
  if (device_.is_cpu()) fail("torch's CPU generator is TorchGenerator; a device generator needs a device");
  require_device(device_);
  Tensor out = Tensor::empty(shape, dtype, device_);
  offset_ += ops::torch_randn(seed_, offset_, out);
  return out.to(DType::F32).to(Device::cpu());
}

}  // namespace mmx
