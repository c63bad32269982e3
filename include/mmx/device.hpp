// Devices: where tensors live and ops run (src/core/device.cpp). A device is a kind, one of the backends
// registered in src/backend/registry.cpp ("cpu" and whatever else this build has), and an index among
// that kind's devices. Backends other than the CPU are modules loaded the first time a device of theirs
// is used, so a program that never asks for one never pays for loading it.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace mmx {

class Device {
 public:
  constexpr Device() = default;  // the CPU
  static constexpr Device cpu() { return Device(); }
  // "cpu", or a registered backend's name with an optional index: "cuda", "cuda:1". An unknown name is a
  // usage error that lists the known ones.
  static Device parse(const std::string& name);
  constexpr bool is_cpu() const { return kind_ == 0; }
  constexpr int kind() const { return kind_; }  // the backend's position in the registry (0: the CPU)
  constexpr int index() const { return index_; }
  std::string name() const;  // "cpu", "cuda:0"
  friend constexpr bool operator==(Device a, Device b) { return a.kind_ == b.kind_ && a.index_ == b.index_; }

 private:
  constexpr Device(uint8_t kind, uint8_t index) : kind_(kind), index_(index) {}
  uint8_t kind_ = 0, index_ = 0;
};

// The device kinds this build knows, "cpu" first (whether their modules load or not).
std::vector<std::string> device_kinds();
// How a kind is provided, without loading it: "built in", "module PATH, loaded when ...", or "not in this
// build (no MODULE)".
std::string device_kind_status(const std::string& kind);
// Whether the device can be used: its backend is built and loads, and sees a device at that index.
bool device_available(Device device);
// Fails (mmx::Error) saying why the device cannot be used: no backend module, or no such device.
void require_device(Device device);
// What the device is, for reports: "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs, 81559 MiB)"; the CPU's model name.
std::string device_description(Device device);
// Waits until every op queued on the device has run (for timing); nothing to do on the CPU.
void synchronize(Device device);
// The most memory tensors held on the device since the last reset, in MiB (0 where not tracked: the CPU).
double peak_memory_mb(Device device);
void reset_peak_memory(Device device);

}  // namespace mmx
