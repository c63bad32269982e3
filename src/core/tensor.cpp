#include "mmx/tensor.hpp"

#include <cmath>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <unordered_map>
#include <sstream>

#include "core/device_memory.hpp"
#include "core/half.hpp"

namespace mmx {

size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::F32: case DType::I32: return 4;
    case DType::F16: case DType::BF16: return 2;
    case DType::F64: case DType::I64: return 8;
    case DType::U8: case DType::Bool: case DType::I8: return 1;
  }
  return 0;
}

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::F64: return "F64";
    case DType::I64: return "I64";
    case DType::I32: return "I32";
    case DType::U8: return "U8";
    case DType::Bool: return "BOOL";
    case DType::I8: return "I8";
  }
  return "?";
}

namespace {
bool is_float(DType d) { return d == DType::F32 || d == DType::F16 || d == DType::BF16; }
}  // namespace

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    // A shape can come from a file: a negative or overflowing one is an error, not a small allocation.
    if (d < 0) fail("shape ", shape_str(shape), " has a negative size");
    if (__builtin_mul_overflow(n, d, &n)) fail("shape ", shape_str(shape), " has more elements than 2^63");
  }
  return n;
}

std::string shape_str(const Shape& shape) {
  std::ostringstream out;
  out << '[';
  for (size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << ']';
  return out.str();
}

namespace {

// Large activations (a [4096, 3072] MLP output is 50 MB) would otherwise come from fresh mmap'd pages
// on every op, and page faults then cost as much as the GEMM that fills them. Blocks of 1 MiB and
// more are therefore kept for reuse — the exact rounded size (a model's shapes repeat every layer and
// every forward), else a cached block of up to twice the size — up to 4 GiB in all; a miss returns the
// smaller cached blocks to the system, so peak RSS stays near the live activations (VAE decode at 1024²:
// 5.6 → 3.9 GB). Under AddressSanitizer nothing is cached, so that use after free is still caught.
class BlockCache {
 public:
  static BlockCache& instance() {
    static BlockCache* cache = new BlockCache();  // never destroyed: tensors may outlive static teardown
    return *cache;
  }
  static size_t rounded(size_t bytes) {
    return bytes >= kMinCached ? (bytes + kGranule - 1) / kGranule * kGranule : (bytes + 63) / 64 * 64;
  }
  // Returns a block of at least `bytes` and sets `bytes` to its real size (what release() is told).
  void* allocate(size_t& bytes) {
    if (bytes >= kMinCached && kEnabled) {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = free_.find(bytes);
      if (it != free_.end() && !it->second.empty()) return take(it);
      // No block of this size. A cached one of up to twice the size serves instead (the VAE decoder's
      // 128-channel maps after its 256-channel ones), rather than faulting in fresh pages beside it.
      auto best = free_.end();
      for (auto f = free_.begin(); f != free_.end(); ++f)
        if (!f->second.empty() && f->first > bytes && f->first <= 2 * bytes && (best == free_.end() || f->first < best->first))
          best = f;
      if (best != free_.end()) {
        bytes = best->first;
        return take(best);
      }
      // A miss on a block this large means the model moved on to bigger activations (the decoder
      // doubles its resolution stage by stage): cached blocks smaller than it belong to earlier stages
      // and go back to the system before new pages are faulted in. Shapes that repeat (every layer,
      // every UNet step) are all cached after one pass and never miss again, so this does not thrash.
      for (auto& [size, blocks] : free_) {
        if (size >= bytes) continue;
        for (void* p : blocks) std::free(p);
        cached_ -= size * blocks.size();
        blocks.clear();
      }
    }
    return std::aligned_alloc(64, bytes);
  }
  void* take(std::unordered_map<size_t, std::vector<void*>>::iterator it) {
    void* p = it->second.back();
    it->second.pop_back();
    cached_ -= it->first;
    return p;
  }
  void release(void* p, size_t bytes) {
    if (bytes >= kMinCached && kEnabled) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (cached_ + bytes <= kMaxCached) {
        free_[bytes].push_back(p);
        cached_ += bytes;
        return;
      }
    }
    std::free(p);
  }

 private:
  static constexpr size_t kMinCached = size_t(1) << 20, kGranule = size_t(64) << 10, kMaxCached = size_t(4) << 30;
#if defined(__SANITIZE_ADDRESS__)
  static constexpr bool kEnabled = false;
#else
  static constexpr bool kEnabled = true;
#endif
  std::mutex mutex_;
  std::unordered_map<size_t, std::vector<void*>> free_;
  size_t cached_ = 0;
};

}  // namespace

Tensor Tensor::empty(Shape shape, DType dtype, Device device) {
  for (int64_t d : shape)
    if (d < 0) fail("Tensor::empty: negative dimension in shape ", shape_str(shape));
  Tensor t;
  t.shape_ = std::move(shape);
  t.dtype_ = dtype;
  t.device_ = device;
  t.defined_ = true;
  if (!device.is_cpu()) {
    DeviceMemory* memory = &device_registry::memory(device);  // backends live as long as the process
    const size_t bytes = std::max<size_t>(t.nbytes(), 1);
    void* p = memory->allocate(bytes);
    t.owner_ = std::shared_ptr<void>(p, [bytes, memory](void* q) { memory->release(q, bytes); });
    t.data_ = p;
    return t;
  }
  // 64-byte alignment: the GEMM and vector kernels load whole cache lines.
  size_t bytes = BlockCache::rounded(std::max<size_t>(t.nbytes(), 1));
  void* p = BlockCache::instance().allocate(bytes);  // may hand out a larger cached block: bytes says
  if (!p) fail("out of memory allocating ", bytes, " bytes for a tensor of shape ", shape_str(t.shape_));
  t.owner_ = std::shared_ptr<void>(p, [bytes](void* q) { BlockCache::instance().release(q, bytes); });
  t.data_ = p;
  return t;
}

Tensor Tensor::zeros(Shape shape, DType dtype, Device device) {
  Tensor t = empty(std::move(shape), dtype, device);
  if (!device.is_cpu())
    device_registry::memory(device).zero(t.raw_mutable(), t.nbytes());
  else
    std::memset(t.raw_mutable(), 0, t.nbytes());
  return t;
}

Tensor Tensor::from_external(const void* data, Shape shape, DType dtype, std::shared_ptr<const void> owner) {
  Tensor t;
  t.shape_ = std::move(shape);
  t.dtype_ = dtype;
  t.data_ = data;
  t.owner_ = std::move(owner);
  t.defined_ = true;
  return t;
}

int64_t Tensor::dim(int i) const {
  const int n = ndim();
  if (i < -n || i >= n) fail("dimension ", i, " out of range for a tensor of shape ", shape_str(shape_));
  return shape_[i < 0 ? i + n : i];
}

void Tensor::check_host() const {
  if (!device_.is_cpu())
    fail("a tensor of shape ", shape_str(shape_), " in ", device_.name(),
         " memory was read from the host; copy it with .to(Device::cpu()) first");
}

void Tensor::check_dtype(DType expected) const {
  if (dtype_ != expected)
    fail("tensor of dtype ", dtype_name(dtype_), " accessed as ", dtype_name(expected));
}

Tensor Tensor::reshape(Shape shape) const {
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      if (infer >= 0) fail("reshape: more than one -1 in ", shape_str(shape));
      infer = static_cast<int>(i);
    } else {
      known *= shape[i];
    }
  }
  if (infer >= 0 && known > 0) shape[infer] = numel() / known;
  if (shape_numel(shape) != numel())
    fail("reshape: cannot view ", shape_str(shape_), " as ", shape_str(shape));
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::narrow0(int64_t start, int64_t length) const {
  if (ndim() == 0 || start < 0 || length < 0 || start + length > shape_[0])
    fail("narrow0: rows [", start, ", ", start + length, ") out of range for shape ", shape_str(shape_));
  Tensor t = *this;
  t.shape_[0] = length;
  const size_t row_bytes = shape_[0] ? nbytes() / static_cast<size_t>(shape_[0]) : 0;
  t.data_ = static_cast<const char*>(data_) + static_cast<size_t>(start) * row_bytes;
  return t;
}

Tensor Tensor::clone() const {
  Tensor t = empty(shape_, dtype_, device_);
  if (!nbytes()) return t;
  if (!device_.is_cpu())
    device_registry::memory(device_).copy(t.raw_mutable(), device_, data_, device_, nbytes());
  else
    std::memcpy(t.raw_mutable(), data_, nbytes());
  return t;
}

Tensor Tensor::to(Device device) const {
  if (device == device_) return *this;
  if (!device.is_cpu() && !device_.is_cpu()) return to(Device::cpu()).to(device);  // between two devices: through the host
  Tensor t = empty(shape_, dtype_, device);
  if (nbytes()) device_registry::memory(device.is_cpu() ? device_ : device).copy(t.raw_mutable(), device, data_, device_, nbytes());
  return t;
}

void Tensor::copy_from(const Tensor& src) const {
  if (!defined() || !src.defined() || src.shape_ != shape_)
    fail("copy_from: ", src.defined() ? shape_str(src.shape_) : "undefined", " into ", shape_str(shape_));
  const Tensor here = src.to(device_);  // on this tensor's device, still in src's dtype
  if (!nbytes()) return;
  if (here.dtype_ == dtype_) {
    if (!device_.is_cpu())
      device_registry::memory(device_).copy(raw_mutable(), device_, here.data_, device_, nbytes());
    else
      std::memcpy(raw_mutable(), here.data_, nbytes());
  } else if (!device_.is_cpu()) {
    if (!is_float(dtype_) || !is_float(here.dtype_))
      fail("copy_from: no conversion from ", dtype_name(here.dtype_), " to ", dtype_name(dtype_));
    device_registry::memory(device_).convert(here.data_, here.dtype_, raw_mutable(), dtype_, static_cast<size_t>(numel()));
  } else {
    const Tensor converted = here.to(dtype_);
    std::memcpy(raw_mutable(), converted.data_, nbytes());
  }
}

Tensor Tensor::to(DType dtype) const {
  if (dtype == dtype_) return *this;
  if (!device_.is_cpu()) {
    if (!is_float(dtype) || !is_float(dtype_))
      fail("no conversion from ", dtype_name(dtype_), " to ", dtype_name(dtype), " in ", device_.name(), " memory");
    Tensor out = empty(shape_, dtype, device_);
    device_registry::memory(device_).convert(data_, dtype_, out.raw_mutable(), dtype, static_cast<size_t>(numel()));
    return out;
  }
  const bool half_to_half = (dtype_ == DType::F16 || dtype_ == DType::BF16) && (dtype == DType::F16 || dtype == DType::BF16);
  if (half_to_half) return to(DType::F32).to(dtype);  // exact through f32, then rounded once
  Tensor out = empty(shape_, dtype);
  const size_t n = static_cast<size_t>(numel());
  const auto* u16 = static_cast<const uint16_t*>(data_);
  if (dtype == DType::F32 && dtype_ == DType::F16) {
    f16_to_f32(u16, out.data<float>(), n);
  } else if (dtype == DType::F32 && dtype_ == DType::BF16) {
    bf16_to_f32(u16, out.data<float>(), n);
  } else if (dtype == DType::F32 && dtype_ == DType::F64) {
    const auto* src = static_cast<const double*>(data_);
    float* dst = out.data<float>();
    for (size_t i = 0; i < n; ++i) dst[i] = static_cast<float>(src[i]);
  } else if (dtype == DType::F64 && dtype_ == DType::F32) {
    const auto* src = static_cast<const float*>(data_);
    double* dst = out.data<double>();
    for (size_t i = 0; i < n; ++i) dst[i] = src[i];
  } else if (dtype == DType::F16 && dtype_ == DType::F32) {
    f32_to_f16(static_cast<const float*>(data_), static_cast<uint16_t*>(out.raw_mutable()), n);
  } else if (dtype == DType::BF16 && dtype_ == DType::F32) {
    f32_to_bf16(static_cast<const float*>(data_), static_cast<uint16_t*>(out.raw_mutable()), n);
  } else if (dtype == DType::I64 && dtype_ == DType::I32) {
    const auto* src = static_cast<const int32_t*>(data_);
    int64_t* dst = out.data<int64_t>();
    for (size_t i = 0; i < n; ++i) dst[i] = src[i];
  } else {
    fail("no conversion from ", dtype_name(dtype_), " to ", dtype_name(dtype));
  }
  return out;
}

bool all_finite(const Tensor& t) {
  if (t.dtype() != DType::F32 && t.dtype() != DType::F16 && t.dtype() != DType::BF16 && t.dtype() != DType::F64) return true;
  const Tensor f = t.dtype() == DType::F32 || t.dtype() == DType::F64 ? t : t.to(DType::F32);
  if (f.dtype() == DType::F64) {
    const double* p = f.data<double>();
    for (int64_t i = 0; i < f.numel(); ++i)
      if (!std::isfinite(p[i])) return false;
    return true;
  }
  const float* p = f.data<float>();
  for (int64_t i = 0; i < f.numel(); ++i)
    if (!std::isfinite(p[i])) return false;
  return true;
}

}  // namespace mmx
