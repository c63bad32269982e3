// A backend: one device's memory, its table of ops and what it supports. The registry (registry.cpp)
// makes one object per device the first time that device is used; ops.cpp checks every call once and
// then runs the entry of the tensors' backend. Models and pipelines never see which backend that is.
#pragma once
#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

#include "backend/ops.hpp"
#include "core/device_memory.hpp"

namespace mmx {

// The ops of the table, for supports() and for messages.
enum class Op {
  Gemm, Linear, PackLinearWeight, LayerNorm, Activation, Softmax, Add, Embedding, Attention, Conv2d, GroupNorm,
  UpsampleNearest2x, PadBottomRight, Transpose12, AddChannelBias, Concat1, Geglu, SelectTokens, Patchify,
  TorchRandn, Record,
};
const char* op_name(Op op);  // "linear", ...

// One entry per op, filled by the backend's op-family files (cpu/gemm.cpp fills gemm, linear and
// pack_linear_weight, ...). Entries receive arguments ops.cpp has checked, outputs already allocated on
// the device. A null entry is an op the backend does not have.
struct OpTable {
  // C = alpha · op(A) · op(B) + beta · C on strided row-major f32 matrices in host memory.
  void (*gemm)(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
               const float* b, int64_t ldb, float beta, float* c, int64_t ldc) = nullptr;
  void (*linear)(const Tensor& x, const Tensor& weight, const ops::PackedWeight& packed, const Tensor& bias,
                 const ops::LinearFusion& fusion, Tensor& y) = nullptr;
  ops::PackedWeight (*pack_linear_weight)(const Tensor& weight, DType compute) = nullptr;
  void (*layer_norm)(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps, Tensor& y) = nullptr;
  void (*activation)(Tensor& x, ops::Activation act) = nullptr;
  void (*softmax)(Tensor& x) = nullptr;
  void (*add)(Tensor& x, const Tensor& y) = nullptr;
  void (*embedding)(const Tensor& weight, const Tensor& host_ids, Tensor& y) = nullptr;
  void (*attention)(const Tensor& q, const Tensor& k, const Tensor& v, int64_t heads, const Tensor& key_padding_mask,
                    bool causal, const Tensor& score_bias, Tensor& y) = nullptr;
  void (*conv2d)(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride, int64_t padding,
                 DType compute, Tensor& y) = nullptr;
  void (*group_norm)(const Tensor& x, int64_t groups, const Tensor& weight, const Tensor& bias, float eps,
                     ops::Activation act, Tensor& y) = nullptr;
  void (*upsample_nearest2x)(const Tensor& x, Tensor& y) = nullptr;
  void (*pad_bottom_right)(const Tensor& x, Tensor& y) = nullptr;
  void (*transpose12)(const Tensor& x, Tensor& y) = nullptr;
  void (*add_channel_bias)(Tensor& x, const Tensor& v) = nullptr;
  void (*concat1)(const Tensor& a, const Tensor& b, Tensor& y) = nullptr;
  void (*geglu)(const Tensor& x, Tensor& y) = nullptr;
  void (*select_tokens)(const Tensor& x, const std::vector<int64_t>& positions, Tensor& y) = nullptr;
  void (*patchify)(const Tensor& pixels, int64_t patch_height, int64_t patch_width, Tensor& y) = nullptr;
  // torch.randn of a torch.Generator on this device at (seed, offset) into `out`; returns how far the
  // generator's offset advances.
  uint64_t (*torch_randn)(uint64_t seed, uint64_t offset, Tensor& out) = nullptr;
  // Recordings of the ops a call queues, replayed with one launch (ops::Recording).
  void* (*record)(Device device, const std::function<void()>& body) = nullptr;
  void (*replay)(Device device, void* recording) = nullptr;
  void (*release_recording)(Device device, void* recording) = nullptr;
};

class Backend : public DeviceMemory {
 public:
  explicit Backend(Device device) : device_(device) {}
  Device device() const { return device_; }
  const OpTable& ops() const { return ops_; }
  // Whether the backend runs `op` on inputs of these dtypes: the activations' first, then a weight's
  // where the op has one. The table must have the op; the default asks for activations in
  // activation_dtypes() and weights in the activations' dtype.
  virtual bool supports(Op op, std::initializer_list<DType> dtypes) const;

 protected:
  OpTable ops_;

 private:
  Device device_;
};

// The backend of a device, created on first use (a module loaded for kinds other than the CPU); an
// error saying why when the device cannot be used.
Backend& backend(Device device);

}  // namespace mmx
