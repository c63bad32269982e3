// The op interface every model calls. Arguments are checked here, once, for every backend;
// the backend's table (backend.hpp) then runs the op. Models never see which backend that is.
// Conventions: row-major, dimension 0 outermost; matmul means A·B; nn.Linear weights are [out, in].
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "mmx/device.hpp"
#include "mmx/tensor.hpp"

namespace mmx::ops {

enum class Activation { GeluErf, GeluTanh, QuickGelu, Relu, Silu, Tanh, Sigmoid, Identity };
// Hugging Face's ACT2FN names: "gelu", "gelu_new", "gelu_pytorch_tanh", "quick_gelu", "relu", "silu", ...
Activation activation_from_name(const std::string& hidden_act);

// While enabled, linear, conv2d, attention and gemm add their FLOPs (2 per multiply-add) to a count:
// how benchmarks rate models whose FLOPs have no closed form here (the UNet, the VAE). Enabling resets it.
void count_flops(bool enable);
double counted_flops();

// C[m, n] = alpha · op(A) · op(B) + beta · C on strided row-major f32 matrices.
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

// y[..., N] = x[..., K] · weightᵀ + bias, with weight [N, K] (nn.Linear). `bias` may be undefined.
// The weight may be F32, F16 or BF16 (kept as stored); x, bias and y are F32.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias);

// An nn.Linear weight re-laid out once, at load, the way the backend's GEMM reads it (CPU: f32 panels
// as wide as its micro-kernel), so no forward re-packs or widens it.
struct PackedWeight {
  Tensor data;  // backend-defined layout
  int64_t out_features = 0, in_features = 0;
  int layout = 0;  // which layout `data` is in (the CPU: its kernel's panel width)
  // What the product is computed in: F32, or on the CPU BF16 (bf16 panels) or I8 (int8 panels, with
  // `scales` [out] f32 and `offsets` [out] i32 beside them; gemm_lowp.hpp).
  DType compute = DType::F32;
  Tensor scales, offsets;
  bool defined() const { return data.defined(); }
};
// Undefined when the backend has no packed layout here (the caller keeps the weight as it is). `compute`
// asks for a low-precision product (BF16, I8); where the CPU has no unit for it, the weight is packed
// for f32 instead (PackedWeight::compute says which) and a one-line notice says so, once.
PackedWeight pack_linear_weight(const Tensor& weight, DType compute = DType::F32);

// Work done on linear()'s output while each tile is still in cache: y = act(x·Wᵀ + bias + residual).
struct LinearFusion {
  Tensor residual;  // undefined, or the output's shape
  Activation act = Activation::Identity;
};
// linear() from the weight, its packed form, or both (the packed form is used when it suits the backend).
Tensor linear(const Tensor& x, const Tensor& weight, const PackedWeight& packed, const Tensor& bias,
              const LinearFusion& fusion);

// Normalises over the last dimension: (x − mean) / sqrt(var + eps) · weight + bias (biased variance).
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps);

void activation_(Tensor& x, Activation act);  // in place
void softmax_(Tensor& x);                      // in place, over the last dimension
// x += y, where y has x's shape or x's trailing dimensions (broadcast over the leading ones).
void add_(Tensor& x, const Tensor& y);

// Rows of `weight` [V, C] picked by integer `ids` [...] → [..., C]; an id outside [0, V) is an error.
Tensor embedding(const Tensor& weight, const Tensor& ids);

// Multi-head scaled dot-product attention. q [B, Tq, heads·D], k and v [B, Tk, heads·D] →
// [B, Tq, heads·D]. softmax(q·kᵀ / sqrt(D) + mask) · v, where the mask hides keys whose
// key_padding_mask [B, Tk] (i64, 1 = keep) is 0, and keys after the query when `causal`.
// Scores are computed a bounded block of queries at a time; no [B, heads, Tq, Tk] tensor exists.
// `score_bias` (optional, [B, heads, Tq, Tk] F32) is added to the scaled scores before the mask:
// relative-position terms and the like.
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, int64_t heads,
                 const Tensor& key_padding_mask, bool causal, const Tensor& score_bias = Tensor());

// nn.Conv2d: x [N, C, H, W], weight [O, C, kh, kw] (F32, F16 or BF16), bias [O] (may be undefined) → [N, O, H', W'].
// `compute` BF16 asks the CPU for bf16 products (weight and image columns rounded, f32 sums) where it has a
// bf16 unit; F32 otherwise, and on other backends, which compute in the activations' dtype.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride = 1, int64_t padding = 0,
              DType compute = DType::F32);
// nn.GroupNorm over [N, C, ...]: C split into `groups`, each normalised over its channels and positions;
// `act` is applied to the result in the same pass (GroupNorm → SiLU in every ResNet block).
Tensor group_norm(const Tensor& x, int64_t groups, const Tensor& weight, const Tensor& bias, float eps,
                  Activation act = Activation::Identity);
// F.interpolate(x, scale_factor=2.0, mode="nearest") on [N, C, H, W].
Tensor upsample_nearest2x(const Tensor& x);
// F.pad(x, (0, amount, 0, amount)): zeros after the last row and column (diffusers' Downsample2D with
// padding 0 pads this way before its stride-2 convolution).
Tensor pad_bottom_right(const Tensor& x, int64_t amount);

// Moving data between layouts, so model code never touches elements itself (and runs on any backend).
// [N, A, B] → [N, B, A] (x.transpose(1, 2)): between the image layout [N, C, H·W] of convolutions and
// the token layout [N, H·W, C] of attention and linear layers.
Tensor transpose12(const Tensor& x);
// x[n, c, ...] += v[n, c] (per sample and channel: the ResNet block's time embedding).
void add_channel_bias_(Tensor& x, const Tensor& v);
// torch.cat([a, b], dim=1) of [Na, A, ...] and [N, B, ...] with equal trailing dimensions; an `a` with
// Na = 1 is repeated over the batch (a class token before each image's patch tokens).
Tensor concat1(const Tensor& a, const Tensor& b);
// hidden, gate = x.chunk(2, -1); hidden · gelu(gate), erf GELU (diffusers' GEGLU).
Tensor geglu(const Tensor& x);
// y[b] = x[b, positions[b]] for x [B, T, C] → [B, C]: pooling by one token (BERT's CLS, CLIP's EOS).
Tensor select_tokens(const Tensor& x, const std::vector<int64_t>& positions);
// The ph×pw patches of images [B, C, H, W] as rows [B, (H/ph)·(W/pw), C·ph·pw], row-major over the
// patch grid, each ordered (c, y, x) like a Conv2d(kernel = stride = patch) weight: a linear layer on
// them is the ViT/CLIP patch embedding. Rows and columns past the last whole patch are dropped.
Tensor patchify(const Tensor& pixels, int64_t patch_height, int64_t patch_width);

// torch.randn of a torch.Generator on out's device at (seed, Philox offset), drawn as torch draws it there,
// into `out` (F32/F16/BF16); returns how far the generator's offset advances. Backends that reproduce
// their device's generator have it (CUDA: curand's Philox in torch's launch grid); the CPU's is
// TorchGenerator (mmx/torch_random.hpp).
uint64_t torch_randn(uint64_t seed, uint64_t offset, Tensor& out);

// A recording of the ops one call of a function queues, replayed later with one launch (CUDA graphs:
// the UNet step without launching hundreds of kernels from the host). Recording does not run the ops.
// Tensors the function reads must stay where they are (copy new values into them with copy_from before
// each replay); tensors it creates come from a memory pool kept for the recording, so a tensor it
// returns (kept by the caller) is overwritten by each replay. Available on CUDA unless MMX_CUDA_GRAPHS=0.
bool recordings_enabled(Device device);
class Recording {
 public:
  static Recording record(Device device, const std::function<void()>& body);
  void replay() const;
  bool defined() const { return handle_ != nullptr; }

 private:
  std::shared_ptr<void> handle_;
  Device device_;
};

}  // namespace mmx::ops
