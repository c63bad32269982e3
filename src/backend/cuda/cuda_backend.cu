// The backend of one CUDA device: context (stream, cuBLASLt handle and workspace), a caching allocator in
// the manner of PyTorch's (freed blocks go back to a pool by rounded size and serve later requests, which
// are queued on the same stream, so reuse needs no synchronisation), pinned uploads, conversions, CUDA
// graphs, and the module's entry points for the registry.
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "backend/cuda/cuda_backend.cuh"
#include "backend/cuda/cuda_common.cuh"
#include "backend/module.hpp"

namespace mmx::cuda {

void fail_cuda(cudaError_t status, const char* what, const char* file, int line) {
  fail("CUDA error ", cudaGetErrorName(status), " (", cudaGetErrorString(status), ") in ", what, " at ", file, ":", line);
}
void fail_cublas(cublasStatus_t status, const char* what, const char* file, int line) {
  fail("cuBLAS error ", static_cast<int>(status), " in ", what, " at ", file, ":", line);
}

// Blocks under 1 MiB round to 512 bytes, larger ones to 2 MiB, so a model's repeating shapes find
// their blocks again; a request may take a pooled block up to twice its size. On cudaMalloc failure
// every pooled block is returned to the driver and the allocation is tried once more.
// While a graph is recorded, allocations come from a private pool of that recording (PyTorch does the
// same): the graph replays into those addresses later, so no tensor outside it may ever get them.
class CachingAllocator {
 public:
  explicit CachingAllocator(cudaStream_t stream) : stream_(stream) {}
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
    MMX_CUDA_CHECK(cudaStreamSynchronize(stream_));
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
    (void)cudaStreamSynchronize(stream_);
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
  cudaStream_t stream_;
};
namespace {

template <class From, class To>
__global__ void convert_kernel(const From* src, To* dst, size_t n) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    dst[i] = from_float<To>(to_float<From>(src[i]));
}

// CUDA graphs: the ops a call queues on the stream, recorded once and replayed with one launch.
struct Recording {
  cudaGraphExec_t exec = nullptr;
  int pool = 0;
};

void* record_graph(Device device, const std::function<void()>& body) {
  CudaBackend& cuda = CudaBackend::of(device);
  CachingAllocator& allocator = cuda.allocator();
  cuda.synchronize();
  const int pool = allocator.begin_private_pool();
  // Relaxed: the private pool may cudaMalloc while the stream is being captured.
  MMX_CUDA_CHECK(cudaStreamBeginCapture(cuda.stream(), cudaStreamCaptureModeRelaxed));
  cudaGraph_t graph = nullptr;
  try {
    body();
  } catch (...) {
    cudaStreamEndCapture(cuda.stream(), &graph);
    if (graph) cudaGraphDestroy(graph);
    (void)cudaGetLastError();
    allocator.end_private_pool();
    allocator.free_private_pool(pool);
    throw;
  }
  const cudaError_t ended = cudaStreamEndCapture(cuda.stream(), &graph);
  allocator.end_private_pool();
  if (ended != cudaSuccess) {
    allocator.free_private_pool(pool);
    fail_cuda(ended, "cudaStreamEndCapture (an op synchronised or used another stream while recording)", __FILE__, __LINE__);
  }
  auto* r = new Recording{nullptr, pool};
  const cudaError_t instantiated = cudaGraphInstantiate(&r->exec, graph, 0);
  cudaGraphDestroy(graph);
  if (instantiated != cudaSuccess) {
    allocator.free_private_pool(pool);
    delete r;
    fail_cuda(instantiated, "cudaGraphInstantiate", __FILE__, __LINE__);
  }
  return r;
}

void replay_graph(Device device, void* recording) {
  CudaBackend& cuda = CudaBackend::of(device);
  MMX_CUDA_CHECK(cudaGraphLaunch(static_cast<Recording*>(recording)->exec, cuda.stream()));
}

void release_graph(Device device, void* recording) {
  CachingAllocator& allocator = CudaBackend::of(device).allocator();
  auto* r = static_cast<Recording*>(recording);
  cudaGraphExecDestroy(r->exec);
  allocator.free_private_pool(r->pool);
  delete r;
}

}  // namespace

CudaBackend::CudaBackend(Device device) : Backend(device) {
  MMX_CUDA_CHECK(cudaSetDevice(device.index()));
  MMX_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  MMX_CUBLAS_CHECK(cublasLtCreate(&lt_));
  MMX_CUDA_CHECK(cudaMalloc(&workspace_, workspace_bytes_));
  allocator_ = std::make_unique<CachingAllocator>(stream_);
  cudaDeviceProp prop{};
  MMX_CUDA_CHECK(cudaGetDeviceProperties(&prop, device.index()));
  label_ = str(prop.name, " (sm_", prop.major, prop.minor, ", ", prop.multiProcessorCount, " SMs, ",
               prop.totalGlobalMem >> 20, " MiB)");
  add_gemm_ops(ops_);
  add_conv_ops(ops_);
  add_attention_ops(ops_);
  add_elementwise_ops(ops_);
  add_layout_ops(ops_);
  add_random_ops(ops_);
  add_graph_ops(ops_);
}

CudaBackend& CudaBackend::of(Device device) {
  auto& cuda = static_cast<CudaBackend&>(mmx::backend(device));
  thread_local int current = -1;  // the calling thread's current device, as far as mmx has set it
  if (current != device.index()) {
    MMX_CUDA_CHECK(cudaSetDevice(device.index()));
    current = device.index();
  }
  return cuda;
}

void* CudaBackend::allocate(size_t bytes) {
  of(device());
  return allocator_->allocate(bytes);
}
void CudaBackend::release(void* p, size_t) { allocator_->release(p); }

// Host → device copies of weights go through a pinned staging buffer in chunks, two in flight, rather
// than through the driver's pageable path (which stages and blocks per call anyway, at lower bandwidth).
void CudaBackend::upload(void* dst, const void* src, size_t bytes) {
  constexpr size_t kChunk = size_t(16) << 20;
  if (bytes < kChunk) {
    MMX_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_));
    MMX_CUDA_CHECK(cudaStreamSynchronize(stream_));
    return;
  }
  std::lock_guard<std::mutex> lock(upload_mutex_);
  if (!staging_[0])
    for (int i = 0; i < 2; ++i) {
      MMX_CUDA_CHECK(cudaMallocHost(&staging_[i], kChunk));
      MMX_CUDA_CHECK(cudaEventCreateWithFlags(&staged_[i], cudaEventDisableTiming));
      MMX_CUDA_CHECK(cudaEventRecord(staged_[i], stream_));
    }
  for (size_t offset = 0, i = 0; offset < bytes; offset += kChunk, i ^= 1) {
    const size_t n = std::min(kChunk, bytes - offset);
    MMX_CUDA_CHECK(cudaEventSynchronize(staged_[i]));  // the copy that last read this buffer is done
    std::memcpy(staging_[i], static_cast<const char*>(src) + offset, n);
    MMX_CUDA_CHECK(cudaMemcpyAsync(static_cast<char*>(dst) + offset, staging_[i], n, cudaMemcpyHostToDevice, stream_));
    MMX_CUDA_CHECK(cudaEventRecord(staged_[i], stream_));
  }
  MMX_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void CudaBackend::copy(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes) {
  of(device());
  if (!dst_device.is_cpu() && src_device.is_cpu()) return upload(dst, src, bytes);
  const cudaMemcpyKind kind = dst_device.is_cpu() ? (src_device.is_cpu() ? cudaMemcpyHostToHost : cudaMemcpyDeviceToHost)
                                                  : cudaMemcpyDeviceToDevice;
  MMX_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, kind, stream_));
  if (dst_device.is_cpu()) MMX_CUDA_CHECK(cudaStreamSynchronize(stream_));  // the host reads it next
}

void CudaBackend::zero(void* p, size_t bytes) {
  of(device());
  MMX_CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, stream_));
}

void CudaBackend::convert(const void* src, DType from, void* dst, DType to, size_t n) {
  if (n == 0) return;
  of(device());
  const unsigned blocks = static_cast<unsigned>(std::min<size_t>((n + 255) / 256, 65535));
  dispatch_float(from, "convert", [&]<class From>() {
    dispatch_float(to, "convert", [&]<class To>() {
      convert_kernel<From, To><<<blocks, 256, 0, stream_>>>(static_cast<const From*>(src), static_cast<To*>(dst), n);
    });
  });
  MMX_CUDA_LAUNCH_CHECK();
}

void CudaBackend::synchronize() {
  of(device());
  MMX_CUDA_CHECK(cudaStreamSynchronize(stream_));
}
size_t CudaBackend::peak_bytes() const { return allocator_->peak(); }
void CudaBackend::reset_peak() { allocator_->reset_peak(); }
std::string CudaBackend::description() const { return label_; }

bool CudaBackend::supports(Op op, std::initializer_list<DType> dtypes) const {
  if (op == Op::Record) {  // MMX_CUDA_GRAPHS=0 runs every step eagerly (to compare, or to debug)
    const char* env = std::getenv("MMX_CUDA_GRAPHS");
    if (env && std::string(env) == "0") return false;
  }
  return Backend::supports(op, dtypes);
}

void add_graph_ops(OpTable& ops) {
  ops.record = record_graph;
  ops.replay = replay_graph;
  ops.release_recording = release_graph;
}

}  // namespace mmx::cuda

// The module's entry points (backend/module.hpp).
MMX_BACKEND_MODULE_EXPORT int mmx_backend_abi() { return mmx::kBackendModuleAbi; }

MMX_BACKEND_MODULE_EXPORT int mmx_backend_device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return count;
}

MMX_BACKEND_MODULE_EXPORT mmx::Backend* mmx_backend_create(int index) {
  return new mmx::cuda::CudaBackend(mmx::Device::parse("cuda:" + std::to_string(index)));
}
