// One table of ops per device. Entries receive arguments already checked by ops.cpp.
#pragma once
#include <functional>

#include "backend/ops.hpp"

namespace mmx {

struct OpTable {
  const char* name;
  void (*gemm)(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
               int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);
  void (*linear)(const Tensor& x, const Tensor& weight, const ops::PackedWeight& packed, const Tensor& bias,
                 const ops::LinearFusion& fusion, Tensor& y);
  ops::PackedWeight (*pack_linear_weight)(const Tensor& weight);
  void (*layer_norm)(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps, Tensor& y);
  void (*activation)(Tensor& x, ops::Activation act);
  void (*softmax)(Tensor& x);
  void (*add)(Tensor& x, const Tensor& y);
  void (*embedding)(const Tensor& weight, const Tensor& ids, Tensor& y);
  void (*attention)(const Tensor& q, const Tensor& k, const Tensor& v, int64_t heads,
                    const Tensor& key_padding_mask, bool causal, const Tensor& score_bias, Tensor& y);
  void (*conv2d)(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride, int64_t padding, Tensor& y);
  void (*group_norm)(const Tensor& x, int64_t groups, const Tensor& weight, const Tensor& bias, float eps,
                     ops::Activation act, Tensor& y);
  void (*upsample_nearest2x)(const Tensor& x, Tensor& y);
  void (*pad_bottom_right)(const Tensor& x, Tensor& y);
  void (*transpose12)(const Tensor& x, Tensor& y);
  void (*add_channel_bias)(Tensor& x, const Tensor& v);
  void (*concat1)(const Tensor& a, const Tensor& b, Tensor& y);
  void (*geglu)(const Tensor& x, Tensor& y);
  void (*select_tokens)(const Tensor& x, const std::vector<int64_t>& positions, Tensor& y);
  void (*patchify)(const Tensor& pixels, int64_t patch_height, int64_t patch_width, Tensor& y);
  // Recording the ops of a call to replay them later (CUDA graphs); nullptr where the backend has none.
  void* (*record)(const std::function<void()>& body);
  void (*replay)(void* recording);
  void (*release_recording)(void* recording);
};

const OpTable& cpu_op_table();
// The CUDA backend's table (backend/cuda), or nullptr in a build without it.
const OpTable* cuda_op_table();
const OpTable& op_table(Device device);

}  // namespace mmx
