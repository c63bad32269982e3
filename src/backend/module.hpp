// What a backend module (a shared library such as libmmx-cuda.so) exports for the registry, with C
// linkage, and the version both sides must agree on: a module built from another mmx is refused.
#pragma once
#include "backend/backend.hpp"

namespace mmx {

constexpr int kBackendModuleAbi = 1;
using BackendModuleAbi = int (*)();            // mmx_backend_abi: kBackendModuleAbi
using BackendModuleDeviceCount = int (*)();    // mmx_backend_device_count: devices visible (0: none)
using BackendModuleCreate = Backend* (*)(int);  // mmx_backend_create: the backend of one device, never freed

}  // namespace mmx

#define MMX_BACKEND_MODULE_EXPORT extern "C" __attribute__((visibility("default")))
