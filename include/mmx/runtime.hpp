// Process-wide settings (threads, log verbosity) and what the process has used.
#pragma once
#include <string>

#include "mmx/tensor.hpp"

namespace mmx {

// Threads used by every CPU kernel (OpenMP and the GEMM library). n <= 0 means all cores.
void set_num_threads(int n);
int num_threads();

enum class LogLevel { Error = 0, Warn = 1, Info = 2, Debug = 3 };
void set_log_level(LogLevel level);
LogLevel log_level();

// Where models run: the device their weights are uploaded to when loaded, and the dtype of their
// activations (F32 on the CPU; F32, F16 or BF16 on CUDA). Models take host F32 inputs and return host
// F32 outputs whatever the placement; the conversions happen at their boundary (in / out).
struct Placement {
  Device device = Device::CPU;
  DType dtype = DType::F32;
  Tensor in(const Tensor& t) const;   // a caller's tensor on the device, floats in `dtype`
  Tensor out(const Tensor& t) const;  // a model's result as F32 in host memory
};
// Set before loading models (the CLI's --device and --dtype); fails for a CPU placement other than
// F32 and for CUDA where this build or machine has none.
void set_placement(const Placement& placement);
Placement placement();
// "f32" | "f16" | "bf16" (also "float32", "float16", "bfloat16", "fp16").
DType compute_dtype_from_name(const std::string& name);

// The CUDA device: waits for queued work; the most memory tensors held there since the last reset, in
// MiB; its name. Without a CUDA device: nothing, 0 and "".
void synchronize_device();
double peak_device_memory_mb();
void reset_peak_device_memory();
std::string device_label();

// The most resident memory this process has held so far (getrusage's ru_maxrss), in MiB.
double peak_rss_mb();

}  // namespace mmx
