// What core asks of a device's backend to keep tensors in its memory, and of the registry to find that
// backend. Every backend is a DeviceMemory (backend/backend.hpp); src/backend/registry.cpp implements the
// lookups. Core itself names no backend.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "mmx/device.hpp"
#include "mmx/tensor.hpp"

namespace mmx {

class DeviceMemory {
 public:
  virtual ~DeviceMemory() = default;
  // At least `bytes` of the device's memory; throws (mmx::Error) when the device is out of memory.
  virtual void* allocate(size_t bytes) = 0;
  virtual void release(void* p, size_t bytes) = 0;
  // Copies between this device and the host, or within this device; returns once the host may read
  // what it received.
  virtual void copy(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes) = 0;
  virtual void zero(void* p, size_t bytes) = 0;
  // Converts n elements between F32, F16 and BF16 in this device's memory.
  virtual void convert(const void* src, DType from, void* dst, DType to, size_t n) = 0;
  virtual void synchronize() = 0;             // waits for every queued op
  virtual size_t peak_bytes() const = 0;      // the most memory tensors have held at once
  virtual void reset_peak() = 0;
  virtual std::string description() const = 0;
  // The dtypes the device's ops compute in (the CPU: F32; CUDA: F32, F16, BF16).
  virtual const std::vector<DType>& activation_dtypes() const = 0;
};

namespace device_registry {
std::vector<std::string> kinds();        // "cpu" first
DeviceMemory& memory(Device device);     // the device's backend, created (its module loaded) on first use
bool available(Device device);
void require(Device device);             // fails saying why the device cannot be used
std::string status(const std::string& kind);  // "built in", "module PATH, ...", "not in this build (...)"
}  // namespace device_registry

}  // namespace mmx
