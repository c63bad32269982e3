#include "mmx/runtime.hpp"

#include "core/device_memory.hpp"

namespace mmx {

namespace {
Placement g_placement;
bool is_float(DType d) { return d == DType::F32 || d == DType::F16 || d == DType::BF16; }
}  // namespace

Tensor Placement::in(const Tensor& t) const {
  if (!t.defined()) return t;
  Tensor on_device = t.to(device);
  return is_float(t.dtype()) ? on_device.to(dtype) : on_device;
}

Tensor Placement::out(const Tensor& t) const {
  if (!t.defined()) return t;
  return t.to(DType::F32).to(Device::CPU);  // converted on the device: half the bytes cross the bus
}

void set_placement(const Placement& placement) {
  if (!is_float(placement.dtype)) fail("--dtype must be f32, f16 or bf16, got ", dtype_name(placement.dtype));
  if (placement.device == Device::CPU && placement.dtype != DType::F32)
    throw Error(ErrorKind::Usage, str("the CPU backend computes in f32, not ", dtype_name(placement.dtype)),
                "use --dtype f32 on the CPU (half-precision weights are widened as they are read)");
  if (placement.device == Device::CUDA && !device::cuda_memory())
    throw Error(ErrorKind::Usage, "--device cuda: this build of mmx has no CUDA backend",
                "configure with -DMMX_CUDA=ON on a machine with nvcc (CUDA 12 or later)");
  if (placement.device == Device::CUDA && !cuda_available())
    fail("--device cuda: no CUDA device is visible (check nvidia-smi and CUDA_VISIBLE_DEVICES)");
  g_placement = placement;
}

Placement placement() { return g_placement; }

DType compute_dtype_from_name(const std::string& name) {
  if (name == "f32" || name == "float32" || name == "fp32") return DType::F32;
  if (name == "f16" || name == "float16" || name == "fp16" || name == "half") return DType::F16;
  if (name == "bf16" || name == "bfloat16") return DType::BF16;
  throw Error(ErrorKind::Usage, "unknown dtype '" + name + "'", "use f32, f16 or bf16");
}

void synchronize_device() {
  if (cuda_available()) device::cuda_memory()->synchronize();
}
double peak_device_memory_mb() { return cuda_available() ? double(device::cuda_memory()->peak_bytes()) / (1 << 20) : 0.0; }
void reset_peak_device_memory() {
  if (cuda_available()) device::cuda_memory()->reset_peak();
}
std::string device_label() { return cuda_available() ? device::cuda_memory()->device_label() : ""; }

}  // namespace mmx
