#include "mmx/placement.hpp"

#include <algorithm>

#include "core/device_memory.hpp"

namespace mmx {

namespace {
bool is_float(DType d) { return d == DType::F32 || d == DType::F16 || d == DType::BF16; }
}  // namespace

DType Placement::activation_dtype() const {
  const std::vector<DType>& computes = device_registry::memory(device).activation_dtypes();
  return std::find(computes.begin(), computes.end(), dtype) != computes.end() ? dtype : DType::F32;
}

Tensor Placement::in(const Tensor& t) const {
  if (!t.defined()) return t;
  Tensor on_device = t.to(device);
  return is_float(t.dtype()) ? on_device.to(activation_dtype()) : on_device;
}

Tensor Placement::out(const Tensor& t) const {
  if (!t.defined()) return t;
  return t.to(DType::F32).to(Device::cpu());  // converted on the device: half the bytes cross the bus
}

void Placement::check() const {
  if (dtype == DType::I8 && !device.is_cpu())
    throw Error(ErrorKind::Usage, "int8 is a CPU dtype (VNNI and AMX integer kernels), not one for " + device.name(),
                "on a GPU use f16 or bf16");
  if (!is_float(dtype) && dtype != DType::I8)
    throw Error(ErrorKind::Usage, mmx::str("a placement's dtype is F32, F16, BF16 or I8, not ", dtype_name(dtype)));
  require_device(device);
}

std::string Placement::str() const {
  if (dtype == DType::I8) return device.name() + " int8";
  std::string d = dtype_name(dtype);
  std::transform(d.begin(), d.end(), d.begin(), [](unsigned char c) { return std::tolower(c); });
  return device.name() + " " + d;
}

DType dtype_from_name(const std::string& name) {
  if (name == "f32" || name == "float32" || name == "fp32") return DType::F32;
  if (name == "f16" || name == "float16" || name == "fp16" || name == "half") return DType::F16;
  if (name == "bf16" || name == "bfloat16") return DType::BF16;
  if (name == "int8" || name == "i8" || name == "q8") return DType::I8;
  throw Error(ErrorKind::Usage, "unknown dtype '" + name + "'", "use f32, f16, bf16 or int8 (the CPU's int8 linear layers)");
}

}  // namespace mmx
