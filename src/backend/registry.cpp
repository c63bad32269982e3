// The backend registry: every device kind this build knows, in one table. The CPU is built in; other
// backends are shared modules built beside libmmx and loaded with dlopen the first time a device of
// theirs is used (a program that never asks for one never loads its libraries). Adding a backend is its
// folder under src/backend/ and one line in kKinds.
#include <dlfcn.h>

#include <array>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>

#include "backend/backend.hpp"
#include "backend/cpu/cpu_backend.hpp"
#include "backend/module.hpp"
#include "core/log.hpp"

namespace mmx {
namespace {

struct Kind {
  const char* name;                            // what --device says: "cpu", "cuda", "cuda:1"
  std::unique_ptr<Backend> (*create)();        // built in (the CPU), or null
  const char* module;                          // a module beside libmmx (MMX_BACKEND_PATH overrides)
  const char* build_hint;                      // what to do when this build has no such module
  const char* device_hint;                     // what to check when the module sees no device
};

const Kind kKinds[] = {
    {"cpu", create_cpu_backend, nullptr, "", ""},
    {"cuda", nullptr, "libmmx-cuda.so", "configure mmx with -DMMX_CUDA=ON on a machine with nvcc (CUDA 12 or later)",
     "check nvidia-smi and CUDA_VISIBLE_DEVICES"},
};
constexpr size_t kKindCount = sizeof(kKinds) / sizeof(kKinds[0]);

// Where modules are looked for: MMX_BACKEND_PATH (folders separated by ':'), then libmmx's own folder and
// its mmx/ subfolder (the installed layout: lib/libmmx.so, lib/mmx/libmmx-cuda.so).
std::vector<std::string> module_folders() {
  std::vector<std::string> folders;
  if (const char* env = std::getenv("MMX_BACKEND_PATH"))
    for (std::string rest = env; !rest.empty();) {
      const size_t colon = rest.find(':');
      if (colon) folders.push_back(rest.substr(0, colon));
      rest = colon == std::string::npos ? "" : rest.substr(colon + 1);
    }
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&create_cpu_backend), &info) && info.dli_fname) {
    const std::string here = std::filesystem::path(info.dli_fname).parent_path().string();
    folders.push_back(here.empty() ? "." : here);
    folders.push_back((here.empty() ? "." : here) + "/mmx");
  }
  return folders;
}

// A loaded module and the backends made from it, one per device index.
struct LoadedKind {
  std::once_flag loaded;
  std::string error;       // why the module could not be used (empty: it loads)
  ErrorKind error_kind = ErrorKind::Runtime;
  int device_count = 0;
  BackendModuleCreate create = nullptr;
  std::mutex mutex;
  std::array<std::atomic<Backend*>, 256> devices{};
};

LoadedKind& loaded(size_t kind) {
  static std::array<LoadedKind, kKindCount>* table = new std::array<LoadedKind, kKindCount>();  // never destroyed
  LoadedKind& k = (*table)[kind];
  std::call_once(k.loaded, [&] {
    const Kind& spec = kKinds[kind];
    if (spec.create) {
      k.device_count = 1;
      return;
    }
    std::string looked;
    void* handle = nullptr;
    for (const std::string& folder : module_folders()) {
      const std::string path = folder + "/" + spec.module;
      looked += (looked.empty() ? "" : ", ") + folder;
      if (!std::filesystem::exists(path)) continue;
      handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (!handle) {
        k.error = str("cannot load ", path, ": ", dlerror());
        return;
      }
      log_debug("loaded the ", spec.name, " backend from ", path);
      break;
    }
    if (!handle) {
      k.error = str("this build of mmx has no ", spec.name, " backend (no ", spec.module, " in ", looked, ")");
      k.error_kind = ErrorKind::Usage;
      return;
    }
    const auto abi = reinterpret_cast<BackendModuleAbi>(dlsym(handle, "mmx_backend_abi"));
    const auto count = reinterpret_cast<BackendModuleDeviceCount>(dlsym(handle, "mmx_backend_device_count"));
    k.create = reinterpret_cast<BackendModuleCreate>(dlsym(handle, "mmx_backend_create"));
    if (!abi || !count || !k.create || abi() != kBackendModuleAbi) {
      k.error = str(spec.module, " is not a backend module of this mmx (rebuild it with this libmmx)");
      k.create = nullptr;
      return;
    }
    k.device_count = count();
  });
  return k;
}

size_t kind_index(Device device) {
  const size_t kind = static_cast<size_t>(device.kind());
  if (kind >= kKindCount) fail("device kind ", kind, " is not registered");
  return kind;
}

[[noreturn]] void unusable(Device device, const LoadedKind& k) {
  const Kind& spec = kKinds[kind_index(device)];
  if (!k.error.empty()) throw Error(k.error_kind, str("device ", device.name(), ": ", k.error), spec.build_hint);
  throw Error(ErrorKind::Runtime,
              str("device ", device.name(), ": no such ", spec.name, " device is visible (", k.device_count, " found)"),
              spec.device_hint);
}

}  // namespace

Backend& backend(Device device) {
  if (device.is_cpu()) {
    static Backend* cpu = create_cpu_backend().release();  // never destroyed: tensors may outlive static teardown
    return *cpu;
  }
  LoadedKind& k = loaded(kind_index(device));
  const int index = device.index();
  if (Backend* b = k.devices[size_t(index)].load(std::memory_order_acquire)) return *b;
  if (!k.create || index >= k.device_count) unusable(device, k);
  std::lock_guard<std::mutex> lock(k.mutex);
  if (Backend* b = k.devices[size_t(index)].load(std::memory_order_acquire)) return *b;
  Backend* made = k.create(index);  // throws mmx::Error on failure
  k.devices[size_t(index)].store(made, std::memory_order_release);
  return *made;
}

namespace device_registry {

std::string status(const std::string& name) {
  for (const Kind& k : kKinds) {
    if (name != k.name) continue;
    if (k.create) return "built in";
    for (const std::string& folder : module_folders()) {  // found, not loaded: loading costs what it saves
      const std::string path = folder + "/" + k.module;
      if (std::filesystem::exists(path)) return "module " + path + ", loaded when a " + name + " device is asked for";
    }
    return std::string("not in this build (no ") + k.module + ")";
  }
  return "unknown";
}

std::vector<std::string> kinds() {
  std::vector<std::string> names;
  for (const Kind& k : kKinds) names.push_back(k.name);
  return names;
}

DeviceMemory& memory(Device device) { return backend(device); }

bool available(Device device) {
  if (device.is_cpu()) return true;
  if (static_cast<size_t>(device.kind()) >= kKindCount) return false;
  const LoadedKind& k = loaded(kind_index(device));
  return k.create && device.index() < k.device_count;
}

void require(Device device) { backend(device); }

}  // namespace device_registry

}  // namespace mmx
