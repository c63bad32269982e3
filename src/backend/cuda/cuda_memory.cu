// The CUDA context of the process: one device (CUDA_VISIBLE_DEVICES picks it), one stream, a cuBLASLt
// handle, and a caching allocator in the manner of PyTorch's: freed blocks go back to a pool by rounded
// size and serve later requests, which are queued on the same stream, so reuse needs no synchronisation.
#include <cstring>
#include <string>
#include <map>
#include <mutex>
#include <vector>

#include "backend/cuda/cuda_common.cuh"
#include "core/device_memory.hpp"

namespace mmx::cuda {

void fail_cuda(cudaError_t status, const char* what, const char* file, int line) {
  fail("CUDA error ", cudaGetErrorName(status), " (", cudaGetErrorString(status), ") in ", what, " at ", file, ":", line);
}
void fail_cublas(cublasStatus_t status, const char* what, const char* file, int line) {
  fail("cuBLAS error ", static_cast<int>(status), " in ", what, " at ", file, ":", line);
}

namespace {

struct Context {
  cudaStream_t stream = nullptr;
  cublasLtHandle_t lt = nullptr;
  void* workspace = nullptr;
  size_t workspace_bytes = size_t(32) << 20;  // cuBLASLt's recommendation for Hopper
  Context() {
    MMX_CUDA_CHECK(cudaSetDevice(0));
    MMX_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    MMX_CUBLAS_CHECK(cublasLtCreate(&lt));
    MMX_CUDA_CHECK(cudaMalloc(&workspace, workspace_bytes));
  }
};
Context& context() {
  static Context* ctx = new Context();  // never destroyed: tensors may be freed during static teardown
  return *ctx;
}

// Blocks under 1 MiB round to 512 bytes, larger ones to 2 MiB, so a model's repeating shapes find
// their blocks again; a request may take a pooled block up to twice its size. On cudaMalloc failure
// every pooled block is returned to the driver and the allocation is tried once more.
class CachingAllocator {
 public:
  static size_t rounded(size_t bytes) {
    return bytes < kLarge ? (bytes + 511) / 512 * 512 : (bytes + kLarge * 2 - 1) / (kLarge * 2) * (kLarge * 2);
  }
  void* allocate(size_t bytes) {
    const size_t size = rounded(bytes);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = pool_.lower_bound(size);
      if (it != pool_.end() && it->first <= 2 * size) {
        void* p = it->second.back();
        block_size_[p] = it->first;
        it->second.pop_back();
        pooled_ -= it->first;
        if (it->second.empty()) pool_.erase(it);
        return p;
      }
    }
    context();  // the device is set before the first allocation
    void* p = nullptr;
    if (cudaMalloc(&p, size) != cudaSuccess) {
      (void)cudaGetLastError();
      release_pool();
      cudaError_t status = cudaMalloc(&p, size);
      if (status != cudaSuccess) {
        size_t free_bytes = 0, total = 0;
        cudaMemGetInfo(&free_bytes, &total);
        fail("out of GPU memory allocating ", size, " bytes (", free_bytes >> 20, " MiB free of ", total >> 20,
             " MiB; ", in_use_ >> 20, " MiB held by tensors)");
      }
    }
    std::lock_guard<std::mutex> lock(mutex_);
    block_size_[p] = size;
    in_use_ += size;
    peak_ = std::max(peak_, in_use_);
    return p;
  }
  void release(void* p) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = block_size_.find(p);
    if (it == block_size_.end()) return;
    pool_[it->second].push_back(p);
    pooled_ += it->second;
    block_size_.erase(it);
  }
  void release_pool() {
    MMX_CUDA_CHECK(cudaStreamSynchronize(context().stream));
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [size, blocks] : pool_)
      for (void* p : blocks) {
        cudaFree(p);
        in_use_ -= size;
      }
    pool_.clear();
    pooled_ = 0;
  }
  size_t peak() const { return peak_; }
  void reset_peak() { peak_ = in_use_; }

 private:
  static constexpr size_t kLarge = size_t(1) << 20;
  std::mutex mutex_;
  std::map<size_t, std::vector<void*>> pool_;  // by size, for lower_bound
  std::map<void*, size_t> block_size_;         // live blocks
  size_t pooled_ = 0, in_use_ = 0, peak_ = 0;  // in_use_: every block cudaMalloc'd and not yet freed
};
CachingAllocator& allocator() {
  static CachingAllocator* a = new CachingAllocator();
  return *a;
}

// Host → device copies of weights go through a pinned staging buffer in chunks, two in flight, rather
// than through the driver's pageable path (which stages and blocks per call anyway, at lower bandwidth).
void upload(void* dst, const void* src, size_t bytes) {
  constexpr size_t kChunk = size_t(16) << 20;
  if (bytes < kChunk) {
    MMX_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream()));
    MMX_CUDA_CHECK(cudaStreamSynchronize(stream()));
    return;
  }
  static void* staging[2] = {nullptr, nullptr};
  static cudaEvent_t done[2];
  static std::mutex mutex;
  std::lock_guard<std::mutex> lock(mutex);
  if (!staging[0])
    for (int i = 0; i < 2; ++i) {
      MMX_CUDA_CHECK(cudaMallocHost(&staging[i], kChunk));
      MMX_CUDA_CHECK(cudaEventCreateWithFlags(&done[i], cudaEventDisableTiming));
      MMX_CUDA_CHECK(cudaEventRecord(done[i], stream()));
    }
  for (size_t offset = 0, i = 0; offset < bytes; offset += kChunk, i ^= 1) {
    const size_t n = std::min(kChunk, bytes - offset);
    MMX_CUDA_CHECK(cudaEventSynchronize(done[i]));  // the copy that last read this buffer is done
    std::memcpy(staging[i], static_cast<const char*>(src) + offset, n);
    MMX_CUDA_CHECK(cudaMemcpyAsync(static_cast<char*>(dst) + offset, staging[i], n, cudaMemcpyHostToDevice, stream()));
    MMX_CUDA_CHECK(cudaEventRecord(done[i], stream()));
  }
  MMX_CUDA_CHECK(cudaStreamSynchronize(stream()));
}

void copy(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes) {
  if (dst_device == Device::CUDA && src_device == Device::CPU) return upload(dst, src, bytes);
  const cudaMemcpyKind kind = dst_device == Device::CPU
                                  ? (src_device == Device::CPU ? cudaMemcpyHostToHost : cudaMemcpyDeviceToHost)
                                  : cudaMemcpyDeviceToDevice;
  MMX_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, kind, stream()));
  if (dst_device == Device::CPU) MMX_CUDA_CHECK(cudaStreamSynchronize(stream()));  // the host reads it next
}

void zero(void* p, size_t bytes) { MMX_CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, stream())); }

template <class From, class To>
__global__ void convert_kernel(const From* src, To* dst, size_t n) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    dst[i] = from_float<To>(to_float<From>(src[i]));
}

void convert(const void* src, DType from, void* dst, DType to, size_t n) {
  if (n == 0) return;
  const unsigned blocks = static_cast<unsigned>(std::min<size_t>((n + 255) / 256, 65535));
  dispatch_float(from, "convert", [&]<class From>() {
    dispatch_float(to, "convert", [&]<class To>() {
      convert_kernel<From, To><<<blocks, 256, 0, stream()>>>(static_cast<const From*>(src), static_cast<To*>(dst), n);
    });
  });
  MMX_CUDA_LAUNCH_CHECK();
}

void* allocate_hook(size_t bytes) { return allocator().allocate(bytes); }
void release_hook(void* p, size_t) { allocator().release(p); }
void synchronize_hook() { MMX_CUDA_CHECK(cudaStreamSynchronize(stream())); }
size_t peak_hook() { return allocator().peak(); }
void reset_peak_hook() { allocator().reset_peak(); }
const char* label_hook() {
  static const std::string label = [] {
    cudaDeviceProp prop{};
    context();
    MMX_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    return str(prop.name, " (sm_", prop.major, prop.minor, ", ", prop.multiProcessorCount, " SMs, ",
               prop.totalGlobalMem >> 20, " MiB)");
  }();
  return label.c_str();
}

}  // namespace

cudaStream_t stream() { return context().stream; }
cublasLtHandle_t cublaslt() { return context().lt; }
void* gemm_workspace(size_t* bytes) {
  *bytes = context().workspace_bytes;
  return context().workspace;
}
void* device_alloc(size_t bytes) { return allocator().allocate(bytes); }
void device_free(void* p, size_t) { allocator().release(p); }

size_t peak_memory_bytes() { return allocator().peak(); }
void reset_peak_memory() { allocator().reset_peak(); }
void synchronize() { MMX_CUDA_CHECK(cudaStreamSynchronize(stream())); }

}  // namespace mmx::cuda

namespace mmx::device {

const Memory* cuda_memory() {
  static const Memory memory{cuda::allocate_hook, cuda::release_hook, cuda::copy,         cuda::zero,
                             cuda::convert,       cuda::synchronize_hook, cuda::peak_hook, cuda::reset_peak_hook,
                             cuda::label_hook};
  return &memory;
}

bool cuda_device_present() {
  static const bool present = [] {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess) {
      (void)cudaGetLastError();
      return false;
    }
    return count > 0;
  }();
  return present;
}

}  // namespace mmx::device
