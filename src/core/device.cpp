#include "mmx/device.hpp"

#include <charconv>

#include "core/device_memory.hpp"
#include "mmx/error.hpp"

namespace mmx {

Device Device::parse(const std::string& name) {
  const size_t colon = name.find(':');
  const std::string kind = name.substr(0, colon);
  int index = 0;
  if (colon != std::string::npos) {
    const char* first = name.data() + colon + 1;
    const char* last = name.data() + name.size();
    const auto [end, ec] = std::from_chars(first, last, index);
    if (ec != std::errc() || end != last || first == last || index < 0 || index > 255)
      usage_error("device '", name, "': the index after ':' must be a number from 0 to 255");
  }
  const std::vector<std::string> kinds = device_registry::kinds();
  for (size_t k = 0; k < kinds.size(); ++k)
    if (kinds[k] == kind) {
      if (k == 0 && index != 0) usage_error("device '", name, "': the CPU has no index but 0");
      return Device(static_cast<uint8_t>(k), static_cast<uint8_t>(index));
    }
  std::string known;
  for (const auto& k : kinds) known += (known.empty() ? "" : ", ") + k;
  usage_error("unknown device '", name, "' (this build knows ", known, ")");
}

std::string Device::name() const {
  if (is_cpu()) return "cpu";
  return device_registry::kinds().at(size_t(kind_)) + ":" + std::to_string(index_);
}

std::vector<std::string> device_kinds() { return device_registry::kinds(); }
std::string device_kind_status(const std::string& kind) { return device_registry::status(kind); }
bool device_available(Device device) { return device_registry::available(device); }
void require_device(Device device) { device_registry::require(device); }
std::string device_description(Device device) { return device_registry::memory(device).description(); }
void synchronize(Device device) { device_registry::memory(device).synchronize(); }
double peak_memory_mb(Device device) { return double(device_registry::memory(device).peak_bytes()) / (1 << 20); }
void reset_peak_memory(Device device) { device_registry::memory(device).reset_peak(); }

}  // namespace mmx
