// NumPy arrays as files (src/io/npy.cpp): .npy for one, .npz (numpy.savez) for several, written
// atomically. Dtypes F32, F64, I64, I32, U8.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "mmx/tensor.hpp"

namespace mmx {

std::string npy_bytes(const Tensor& tensor);  // the .npy format version 1.0
void write_npy(const std::string& path, const Tensor& tensor);
// numpy.load(path)[name] gives each array back.
void write_npz(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& arrays);

}  // namespace mmx
