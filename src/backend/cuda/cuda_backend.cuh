// The backend of one CUDA device (cuda_backend.cu): its stream, on which every op is queued in program
// order; its cuBLASLt handle and workspace; its caching allocator and pinned upload buffers; and the
// caches each op family keeps for the device (cuBLASLt plans, the cuDNN handle and plans, kernel
// attributes). The registry makes one per device index through this module's mmx_backend_create.
#pragma once
#include <cublasLt.h>
#include <cuda_runtime.h>

#include <map>
#include <memory>
#include <mutex>
#include <typeindex>

#include "backend/backend.hpp"

namespace mmx::cuda {

class CachingAllocator;

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(Device device);
  // The backend of a tensor's device, made current on the calling thread (cudaSetDevice).
  static CudaBackend& of(Device device);

  cudaStream_t stream() const { return stream_; }
  cublasLtHandle_t cublaslt() const { return lt_; }
  void* workspace(size_t* bytes) const {
    *bytes = workspace_bytes_;
    return workspace_;
  }
  CachingAllocator& allocator() const { return *allocator_; }
  // A cache an op family keeps for this device, made (default-constructed) on first use.
  template <class T>
  T& cache() {
    std::lock_guard<std::mutex> lock(caches_mutex_);
    std::shared_ptr<void>& slot = caches_[std::type_index(typeid(T))];
    if (!slot) slot = std::make_shared<T>();
    return *static_cast<T*>(slot.get());
  }

  // DeviceMemory
  void* allocate(size_t bytes) override;
  void release(void* p, size_t bytes) override;
  void copy(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes) override;
  void zero(void* p, size_t bytes) override;
  void convert(const void* src, DType from, void* dst, DType to, size_t n) override;
  void synchronize() override;
  size_t peak_bytes() const override;
  void reset_peak() override;
  std::string description() const override;

  // Backend: F32, F16 and BF16 activations; recordings (CUDA graphs) unless MMX_CUDA_GRAPHS=0.
  const std::vector<DType>& activation_dtypes() const override {
    static const std::vector<DType> dtypes = {DType::F32, DType::F16, DType::BF16};
    return dtypes;
  }
  bool supports(Op op, std::initializer_list<DType> dtypes) const override;

 private:
  void upload(void* dst, const void* src, size_t bytes);
  cudaStream_t stream_ = nullptr;
  cublasLtHandle_t lt_ = nullptr;
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = size_t(32) << 20;  // cuBLASLt's recommendation for Hopper
  std::unique_ptr<CachingAllocator> allocator_;
  std::mutex upload_mutex_;
  void* staging_[2] = {nullptr, nullptr};  // pinned, for large host → device copies
  cudaEvent_t staged_[2] = {};
  std::mutex caches_mutex_;
  std::map<std::type_index, std::shared_ptr<void>> caches_;
  std::string label_;
};

// The op families (gemm.cu: linear, pack_linear_weight; conv.cu: conv2d; attention.cu; elementwise.cu:
// activation, add, embedding, softmax, layer_norm, group_norm, upsample, pad; layout.cu: transpose12,
// add_channel_bias, concat1, geglu, select_tokens, patchify; random.cu: torch_randn; cuda_backend.cu:
// recordings).
void add_gemm_ops(OpTable& ops);
void add_conv_ops(OpTable& ops);
void add_attention_ops(OpTable& ops);
void add_elementwise_ops(OpTable& ops);
void add_layout_ops(OpTable& ops);
void add_random_ops(OpTable& ops);
void add_graph_ops(OpTable& ops);

}  // namespace mmx::cuda
