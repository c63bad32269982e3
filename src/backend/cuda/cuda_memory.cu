// The CUDA context of the process: one device (CUDA_VISIBLE_DEVICES picks it), one stream, a cuBLASLt
// handle, and a caching allocator in the manner of PyTorch's: freed blocks go back to a pool by rounded
// size and serve later requests, which are queued on the same stream, so reuse needs no synchronisation.
#include <cstring>
#include <functional>
#include <string>
#include <map>
#include <mutex>
#include <vector>

#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/cuda_ops.hpp"
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
// While a graph is recorded, allocations come from a private pool of that recording (PyTorch does the
// same): the graph replays into those addresses later, so no tensor outside it may ever get them.
class CachingAllocator {
 public:
  static size_t rounded(size_t bytes) {
    return bytes < kLarge ? (bytes + 511) / 512 * 512 : (bytes + kLarge * 2 - 1) / (kLarge * 2) * (kLarge * 2);
  }
  void* allocate(size_t bytes) {
    const size_t size = rounded(bytes);
    int pool = 0;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      pool = active_pool_;
      auto& free = pools_[pool];
      auto it = free.lower_bound(size);
      if (it != free.end() && it->first <= 2 * size) {
        void* p = it->second.back();
        live_[p] = {it->first, pool};
        it->second.pop_back();
        if (it->second.empty()) free.erase(it);
        return p;
      }
    }
    context();  // the device is set before the first allocation
    void* p = nullptr;
    if (cudaMalloc(&p, size) != cudaSuccess) {
      (void)cudaGetLastError();
      if (pool == 0) release_cached();  // (not while recording: that would synchronise the captured stream)
      cudaError_t status = cudaMalloc(&p, size);
      if (status != cudaSuccess) {
        size_t free_bytes = 0, total = 0;
        cudaMemGetInfo(&free_bytes, &total);
        fail("out of GPU memory allocating ", size, " bytes (", free_bytes >> 20, " MiB free of ", total >> 20,
             " MiB; ", in_use_ >> 20, " MiB held by mmx)");
      }
    }
    std::lock_guard<std::mutex> lock(mutex_);
    live_[p] = {size, pool};
    in_use_ += size;
    peak_ = std::max(peak_, in_use_);
    return p;
  }
  void release(void* p) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = live_.find(p);
    if (it == live_.end()) return;
    const Block block = it->second;
    live_.erase(it);
    if (block.pool != 0 && !pools_.count(block.pool)) {  // its recording is gone
      cudaFree(p);
      in_use_ -= block.size;
      return;
    }
    pools_[block.pool][block.size].push_back(p);
  }
  // Returns the general pool's cached blocks to the driver.
  void release_cached() {
    MMX_CUDA_CHECK(cudaStreamSynchronize(context().stream));
    std::lock_guard<std::mutex> lock(mutex_);
    free_blocks(pools_[0]);
  }
  int begin_private_pool() {
    std::lock_guard<std::mutex> lock(mutex_);
    active_pool_ = next_pool_++;
    pools_[active_pool_];
    return active_pool_;
  }
  void end_private_pool() {
    std::lock_guard<std::mutex> lock(mutex_);
    active_pool_ = 0;
  }
  void free_private_pool(int pool) {  // from destructors: errors (a torn-down runtime at exit) are ignored
    (void)cudaStreamSynchronize(context().stream);
    std::lock_guard<std::mutex> lock(mutex_);
    free_blocks(pools_[pool]);
    pools_.erase(pool);
  }
  size_t peak() const { return peak_; }
  void reset_peak() { peak_ = in_use_; }

 private:
  struct Block {
    size_t size;
    int pool;
  };
  using FreeBlocks = std::map<size_t, std::vector<void*>>;  // by size, for lower_bound
  void free_blocks(FreeBlocks& free) {
    for (auto& [size, blocks] : free)
      for (void* p : blocks) {
        cudaFree(p);
        in_use_ -= size;
      }
    free.clear();
  }
  static constexpr size_t kLarge = size_t(1) << 20;
  std::mutex mutex_;
  std::map<int, FreeBlocks> pools_;  // 0: the general pool; others: one per graph recording
  std::map<void*, Block> live_;      // blocks held by tensors
  int active_pool_ = 0, next_pool_ = 1;
  size_t in_use_ = 0, peak_ = 0;     // in_use_: every block cudaMalloc'd and not yet freed
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

// CUDA graphs: the ops a call queues on the stream, recorded once and replayed with one launch.
namespace {
struct Recording {
  cudaGraphExec_t exec = nullptr;
  int pool = 0;
};
}  // namespace

void* record_graph(const std::function<void()>& body) {
  synchronize();
  const int pool = allocator().begin_private_pool();
  // Relaxed: the private pool may cudaMalloc while the stream is being captured.
  MMX_CUDA_CHECK(cudaStreamBeginCapture(stream(), cudaStreamCaptureModeRelaxed));
  cudaGraph_t graph = nullptr;
  try {
    body();
  } catch (...) {
    cudaStreamEndCapture(stream(), &graph);
    if (graph) cudaGraphDestroy(graph);
    (void)cudaGetLastError();
    allocator().end_private_pool();
    allocator().free_private_pool(pool);
    throw;
  }
  const cudaError_t ended = cudaStreamEndCapture(stream(), &graph);
  allocator().end_private_pool();
  if (ended != cudaSuccess) {
    allocator().free_private_pool(pool);
    fail_cuda(ended, "cudaStreamEndCapture (an op synchronised or used another stream while recording)", __FILE__, __LINE__);
  }
  auto* r = new Recording{nullptr, pool};
  const cudaError_t instantiated = cudaGraphInstantiate(&r->exec, graph, 0);
  cudaGraphDestroy(graph);
  if (instantiated != cudaSuccess) {
    allocator().free_private_pool(pool);
    delete r;
    fail_cuda(instantiated, "cudaGraphInstantiate", __FILE__, __LINE__);
  }
  return r;
}

void replay_graph(void* recording) {
  MMX_CUDA_CHECK(cudaGraphLaunch(static_cast<Recording*>(recording)->exec, stream()));
}

void release_graph(void* recording) {
  auto* r = static_cast<Recording*>(recording);
  cudaGraphExecDestroy(r->exec);
  allocator().free_private_pool(r->pool);
  delete r;
}

size_t peak_memory_bytes() { return allocator().peak(); }
void reset_peak_memory() { allocator().reset_peak(); }
void synchronize() { MMX_CUDA_CHECK(cudaStreamSynchronize(stream())); }

}  // namespace mmx::cuda

namespace mmx::device {

const Memory* cuda_memory() {
  static const Memory memory{cuda::allocate_hook, cuda::release_hook, cuda::copy,         cuda::zero,
                             cuda::convert,       cuda::synchronize,  cuda::peak_memory_bytes, cuda::reset_peak_memory,
                             cuda::label_hook,    cuda::torch_randn};
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
