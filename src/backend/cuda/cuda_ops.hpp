// The CUDA backend's ops (the entries of its OpTable). Tensors hold device memory; every kernel is queued
// on cuda::stream(), so the host only waits where it copies a result back.
#pragma once
#include <cstddef>
#include <functional>
#include <vector>

#include "backend/ops.hpp"

namespace mmx::cuda {

void linear(const Tensor& x, const Tensor& weight, const ops::PackedWeight& packed, const Tensor& bias,
            const ops::LinearFusion& fusion, Tensor& y);
ops::PackedWeight pack_linear_weight(const Tensor& weight);
void layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps, Tensor& y);
void activation(Tensor& x, ops::Activation act);
void softmax(Tensor& x);
void add(Tensor& x, const Tensor& y);
void embedding(const Tensor& weight, const Tensor& ids, Tensor& y);
void attention(const Tensor& q, const Tensor& k, const Tensor& v, int64_t heads, const Tensor& key_padding_mask,
               bool causal, const Tensor& score_bias, Tensor& y);
void conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride, int64_t padding, Tensor& y);
void conv2d_im2col(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride, int64_t padding, Tensor& y);
void add_conv_bias(Tensor& y, const Tensor& bias);  // y[n, o, :, :] += bias[o]
void group_norm(const Tensor& x, int64_t groups, const Tensor& weight, const Tensor& bias, float eps, ops::Activation act,
                Tensor& y);
void upsample_nearest2x(const Tensor& x, Tensor& y);
void pad_bottom_right(const Tensor& x, Tensor& y);
void transpose12(const Tensor& x, Tensor& y);
void add_channel_bias(Tensor& x, const Tensor& v);
void concat1(const Tensor& a, const Tensor& b, Tensor& y);
void geglu(const Tensor& x, Tensor& y);
void select_tokens(const Tensor& x, const std::vector<int64_t>& positions, Tensor& y);
void patchify(const Tensor& pixels, int64_t patch_height, int64_t patch_width, Tensor& y);

// Peak bytes held by tensors in GPU memory since the last reset (what the benchmarks report).
size_t peak_memory_bytes();
void reset_peak_memory();
// Waits until every queued op has run (for timing).
void synchronize();

// torch.randn on a CUDA generator in its state (seed, Philox offset) into `out` (F32/F16/BF16, on the
// device); returns how far the generator's offset advances (random.cu).
uint64_t torch_randn(uint64_t seed, uint64_t offset, Tensor& out);

// CUDA graphs: record the ops `body` queues (not running them; intermediates from a private pool),
// replay them with one launch, release the recording and its pool.
void* record_graph(const std::function<void()>& body);
void replay_graph(void* recording);
void release_graph(void* recording);

}  // namespace mmx::cuda
