// The CPU backend object (cpu_backend.cpp), made by the registry.
#pragma once
#include <memory>

#include "backend/backend.hpp"

namespace mmx {

std::unique_ptr<Backend> create_cpu_backend();

}  // namespace mmx
