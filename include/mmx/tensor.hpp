// Tensor (src/core/tensor.cpp): a shape, a dtype, a device and shared storage. Always contiguous,
// row-major, dimension 0 outermost. Storage may be owned memory, a region of an mmap'd file (kept alive
// by a shared owner), or a device's memory from its backend's allocator. Host code reads elements
// through data<T>(), which refuses a device tensor; kernels take the raw pointer of the device they run
// on through ptr<T>().
#pragma once
#include <cstddef>
#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mmx/device.hpp"
#include "mmx/error.hpp"

namespace mmx {

enum class DType : uint8_t { F32, F16, BF16, F64, I64, I32, U8, Bool, I8 };
size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);  // safetensors spelling: F32, F16, BF16, I64, ...

using Shape = std::vector<int64_t>;
int64_t shape_numel(const Shape& shape);
std::string shape_str(const Shape& shape);  // "[8, 7, 32]"

template <class T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::F32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::F64; };
template <> struct dtype_of<int64_t> { static constexpr DType value = DType::I64; };
template <> struct dtype_of<int32_t> { static constexpr DType value = DType::I32; };
template <> struct dtype_of<uint8_t> { static constexpr DType value = DType::U8; };
template <> struct dtype_of<uint16_t> { static constexpr DType value = DType::F16; };  // raw f16 bits

class Tensor {
 public:
  Tensor() = default;
  static Tensor empty(Shape shape, DType dtype = DType::F32, Device device = Device::cpu());
  static Tensor zeros(Shape shape, DType dtype = DType::F32, Device device = Device::cpu());
  // Wraps memory owned by `owner` (e.g. an mmap'd file); no copy is made.
  static Tensor from_external(const void* data, Shape shape, DType dtype, std::shared_ptr<const void> owner);
  template <class T>
  static Tensor from_vector(const std::vector<T>& values, Shape shape) {
    Tensor t = empty(std::move(shape), dtype_of<T>::value);
    if (static_cast<size_t>(t.numel()) != values.size())
      fail("Tensor::from_vector: ", values.size(), " values for shape ", shape_str(t.shape()));
    std::copy(values.begin(), values.end(), t.data<T>());
    return t;
  }

  bool defined() const { return defined_; }
  const Shape& shape() const { return shape_; }
  int ndim() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int i) const;  // negative counts from the end
  int64_t numel() const { return shape_numel(shape_); }
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }

  const void* raw() const { return data_; }
  void* raw_mutable() const { return const_cast<void*>(data_); }
  template <class T>
  T* data() const {  // host memory only
    check_dtype(dtype_of<T>::value);
    check_host();
    return static_cast<T*>(raw_mutable());
  }
  template <class T>
  T* ptr() const {  // the storage on its own device, for kernels of that device's backend
    return static_cast<T*>(raw_mutable());
  }

  Tensor reshape(Shape shape) const;                    // a view; one dimension may be -1
  Tensor narrow0(int64_t start, int64_t length) const;  // rows [start, start+length) of dim 0, a view
  Tensor clone() const;
  Tensor to(DType dtype) const;  // F16/BF16/F32/F64 conversions; returns *this when already `dtype`
  Tensor to(Device device) const;  // a copy on `device` (synchronous); returns *this when already there
  // Overwrites this tensor's elements with `src` (same shape; any device; F32/F16/BF16 converted),
  // keeping its storage: how new inputs reach a recorded op sequence (ops::Recording).
  void copy_from(const Tensor& src) const;

 private:
  void check_dtype(DType expected) const;
  void check_host() const;
  std::shared_ptr<const void> owner_;
  const void* data_ = nullptr;
  Shape shape_;
  DType dtype_ = DType::F32;
  Device device_;
  bool defined_ = false;
};

// True when every value of a host tensor is finite (integer tensors always are): the check a model's
// output gets before it is written as numbers.
bool all_finite(const Tensor& t);

}  // namespace mmx
