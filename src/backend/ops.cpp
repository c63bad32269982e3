#include "backend/ops.hpp"

#include <atomic>
#include <cstdlib>

#include "backend/backend.hpp"
#include "mmx/error.hpp"

namespace mmx {

namespace ops {

namespace {
std::atomic<bool> g_counting{false};
std::atomic<double> g_flops{0.0};
void add_flops(double flops) {
  if (g_counting.load(std::memory_order_relaxed)) g_flops.store(g_flops.load() + flops);  // ops run on one thread
}
std::string dtype_list(const std::vector<DType>& dtypes) {
  std::string s;
  for (size_t i = 0; i < dtypes.size(); ++i)
    s += std::string(i == 0 ? "" : i + 1 == dtypes.size() ? " or " : ", ") + dtype_name(dtypes[i]);
  return s;
}
// The backend of the tensors' device, asked whether it has `op` at all.
const Backend& backend_with(Op op, Device device) {
  const Backend& b = backend(device);
  if (!b.supports(op, {})) fail(op_name(op), ": the ", device.name(), " backend has no such op");
  return b;
}
// Activations are in a dtype the backend computes in (the CPU: F32; CUDA also F16 and BF16: --dtype).
void require_activations(const Tensor& t, Op op, const char* what) {
  if (!t.defined()) fail(op_name(op), ": ", what, " is undefined");
  const Backend& b = backend_with(op, t.device());
  if (!b.supports(op, {t.dtype()}))
    fail(op_name(op), ": ", what, " must be ", dtype_list(b.activation_dtypes()), " on ", t.device().name(), ", got ",
         dtype_name(t.dtype()));
}
// Every tensor an op is given lives on the first one's device, activations in its dtype.
void require_like(const Tensor& t, const Tensor& first, Op op, const char* what) {
  if (!t.defined()) return;
  if (t.device() != first.device())
    fail(op_name(op), ": ", what, " is in ", t.device().name(), " memory, the input in ", first.device().name());
}
void require_same_dtype(const Tensor& t, const Tensor& first, Op op, const char* what) {
  if (t.defined() && t.dtype() != first.dtype())
    fail(op_name(op), ": ", what, " is ", dtype_name(t.dtype()), ", the input ", dtype_name(first.dtype()));
}
// Parameters of norms and biases: F32, on the input's device.
void require_param(const Tensor& t, const Tensor& first, Op op, const char* what) {
  if (!t.defined()) return;
  require_like(t, first, op, what);
  if (t.dtype() != DType::F32) fail(op_name(op), ": ", what, " must be F32, got ", dtype_name(t.dtype()));
}
// Weights of linear and conv2d: what the backend pairs with these activations (the CPU widens F16/BF16
// weights as it packs them; CUDA multiplies weights uploaded in the activations' dtype).
void require_weight_for(const Tensor& weight, const Tensor& x, Op op) {
  if (!weight.defined()) fail(op_name(op), ": weight is undefined");
  require_like(weight, x, op, "weight");
  if (!backend(x.device()).supports(op, {x.dtype(), weight.dtype()}))
    fail(op_name(op), ": a ", dtype_name(weight.dtype()), " weight with ", dtype_name(x.dtype()), " activations is not supported on ",
         x.device().name());
}
}  // namespace

void count_flops(bool enable) {
  if (enable) g_flops.store(0.0);
  g_counting.store(enable);
}
double counted_flops() { return g_flops.load(); }

Activation activation_from_name(const std::string& name) {
  if (name == "gelu") return Activation::GeluErf;
  if (name == "gelu_new" || name == "gelu_pytorch_tanh" || name == "gelu_fast") return Activation::GeluTanh;
  if (name == "quick_gelu") return Activation::QuickGelu;
  if (name == "relu") return Activation::Relu;
  if (name == "silu" || name == "swish") return Activation::Silu;
  if (name == "tanh") return Activation::Tanh;
  if (name == "sigmoid") return Activation::Sigmoid;
  if (name == "linear") return Activation::Identity;
  fail("unsupported activation '", name,
       "' (supported: gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, quick_gelu, relu, silu, swish, tanh, sigmoid, linear)");
}

void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
          const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  add_flops(2.0 * double(m) * double(n) * double(k));  // host pointers: the CPU backend
  backend_with(Op::Gemm, Device::cpu()).ops().gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  return linear(x, weight, PackedWeight(), bias, LinearFusion());
}

PackedWeight pack_linear_weight(const Tensor& weight, DType compute) {
  if (!weight.defined()) fail("pack_linear_weight: weight is undefined");
  if (weight.ndim() != 2) fail("pack_linear_weight: weight must be 2-D, got ", shape_str(weight.shape()));
  const Backend& b = backend(weight.device());
  if (!b.supports(Op::PackLinearWeight, {weight.dtype()}))
    fail("pack_linear_weight: a ", dtype_name(weight.dtype()), " weight on ", weight.device().name(), " is not supported");
  if (compute != DType::F32 && compute != DType::BF16 && compute != DType::I8)
    fail("pack_linear_weight: products are computed in F32, BF16 or I8, not ", dtype_name(compute));
  return b.ops().pack_linear_weight(weight, compute);
}

Tensor linear(const Tensor& x, const Tensor& weight, const PackedWeight& packed, const Tensor& bias,
              const LinearFusion& fusion) {
  require_activations(x, Op::Linear, "input");
  int64_t out_features = 0, in_features = 0;
  if (packed.defined()) {
    out_features = packed.out_features;
    in_features = packed.in_features;
  } else {
    if (!weight.defined()) fail("linear: weight is undefined");
    if (weight.ndim() != 2) fail("linear: weight must be 2-D, got ", shape_str(weight.shape()));
    out_features = weight.dim(0);
    in_features = weight.dim(1);
  }
  if (weight.defined() && (weight.ndim() != 2 || weight.dim(0) != out_features || weight.dim(1) != in_features))
    fail("linear: weight ", shape_str(weight.shape()), " does not match its packed form [", out_features, ", ",
         in_features, "]");
  if (x.ndim() < 1 || x.dim(-1) != in_features)
    fail("linear: input ", shape_str(x.shape()), " does not match weight [", out_features, ", ", in_features, "]");
  if (weight.defined()) require_weight_for(weight, x, Op::Linear);
  if (packed.defined()) require_like(packed.data, x, Op::Linear, "packed weight");
  if (bias.defined()) {
    require_param(bias, x, Op::Linear, "bias");
    if (bias.numel() != out_features) fail("linear: bias ", shape_str(bias.shape()), " for ", out_features, " outputs");
  }
  Shape shape = x.shape();
  shape.back() = out_features;
  if (fusion.residual.defined()) {
    require_like(fusion.residual, x, Op::Linear, "residual");
    require_same_dtype(fusion.residual, x, Op::Linear, "residual");
    if (fusion.residual.shape() != shape)
      fail("linear: residual ", shape_str(fusion.residual.shape()), " for output ", shape_str(shape));
  }
  Tensor y = Tensor::empty(shape, x.dtype(), x.device());
  add_flops(2.0 * double(x.numel()) * double(out_features));
  backend(x.device()).ops().linear(x, weight, packed, bias, fusion, y);
  return y;
}

Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps) {
  require_activations(x, Op::LayerNorm, "input");
  for (const Tensor* p : {&weight, &bias}) {
    require_param(*p, x, Op::LayerNorm, "parameter");
    if (p->defined() && p->numel() != x.dim(-1))
      fail("layer_norm: parameter ", shape_str(p->shape()), " for input ", shape_str(x.shape()));
  }
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  backend(x.device()).ops().layer_norm(x, weight, bias, eps, y);
  return y;
}

void activation_(Tensor& x, Activation act) {
  require_activations(x, Op::Activation, "input");
  backend(x.device()).ops().activation(x, act);
}

void softmax_(Tensor& x) {
  require_activations(x, Op::Softmax, "input");
  backend(x.device()).ops().softmax(x);
}

void add_(Tensor& x, const Tensor& y) {
  require_activations(x, Op::Add, "x");
  require_activations(y, Op::Add, "y");
  require_like(y, x, Op::Add, "y");
  require_same_dtype(y, x, Op::Add, "y");
  bool ok = y.ndim() <= x.ndim();
  for (int i = 1; ok && i <= y.ndim(); ++i) ok = y.dim(-i) == x.dim(-i);
  if (!ok) fail("add: cannot broadcast ", shape_str(y.shape()), " onto ", shape_str(x.shape()));
  backend(x.device()).ops().add(x, y);
}

Tensor embedding(const Tensor& weight, const Tensor& ids) {
  require_activations(weight, Op::Embedding, "weight");
  if (weight.ndim() != 2) fail("embedding: weight must be 2-D, got ", shape_str(weight.shape()));
  if (ids.dtype() != DType::I64) fail("embedding: ids must be I64, got ", dtype_name(ids.dtype()));
  // Ids are checked on the host (token ids come from the tokenizer there); the backend copies them over.
  const Tensor host_ids = ids.to(Device::cpu());
  const int64_t* p = host_ids.data<int64_t>();
  for (int64_t i = 0; i < ids.numel(); ++i)
    if (p[i] < 0 || p[i] >= weight.dim(0))
      fail("embedding: index ", p[i], " at position ", i, " is outside the table of ", weight.dim(0), " rows");
  Shape shape = ids.shape();
  shape.push_back(weight.dim(1));
  Tensor y = Tensor::empty(shape, weight.dtype(), weight.device());
  backend(weight.device()).ops().embedding(weight, host_ids, y);
  return y;
}

Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, int64_t heads, const Tensor& key_padding_mask,
                 bool causal, const Tensor& score_bias) {
  for (const Tensor* t : {&q, &k, &v}) {
    require_activations(*t, Op::Attention, "q/k/v");
    require_like(*t, q, Op::Attention, "k/v");
    require_same_dtype(*t, q, Op::Attention, "k/v");
  }
  if (q.ndim() != 3 || k.ndim() != 3 || k.shape() != v.shape() || q.dim(0) != k.dim(0) || q.dim(2) != k.dim(2))
    fail("attention: q ", shape_str(q.shape()), ", k ", shape_str(k.shape()), ", v ", shape_str(v.shape()));
  if (heads <= 0 || q.dim(2) % heads != 0) fail("attention: ", q.dim(2), " channels do not split into ", heads, " heads");
  if (key_padding_mask.defined() &&
      (key_padding_mask.dtype() != DType::I64 || key_padding_mask.shape() != Shape{k.dim(0), k.dim(1)}))
    fail("attention: key_padding_mask must be I64 ", shape_str({k.dim(0), k.dim(1)}), ", got ",
         dtype_name(key_padding_mask.dtype()), " ", shape_str(key_padding_mask.shape()));
  require_like(key_padding_mask, q, Op::Attention, "key_padding_mask");
  if (score_bias.defined()) {
    require_param(score_bias, q, Op::Attention, "score_bias");
    if (score_bias.shape() != Shape{q.dim(0), heads, q.dim(1), k.dim(1)})
      fail("attention: score_bias must be ", shape_str({q.dim(0), heads, q.dim(1), k.dim(1)}), ", got ",
           shape_str(score_bias.shape()));
  }
  Tensor y = Tensor::empty(q.shape(), q.dtype(), q.device());
  add_flops(4.0 * double(q.dim(0)) * double(q.dim(1)) * double(k.dim(1)) * double(q.dim(2)));  // q·kᵀ and p·v
  backend(q.device()).ops().attention(q, k, v, heads, key_padding_mask, causal, score_bias, y);
  return y;
}

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride, int64_t padding, DType compute) {
  require_activations(x, Op::Conv2d, "input");
  require_weight_for(weight, x, Op::Conv2d);
  if (x.ndim() != 4 || weight.ndim() != 4 || weight.dim(1) != x.dim(1))
    fail("conv2d: input ", shape_str(x.shape()), " does not match weight ", shape_str(weight.shape()));
  require_param(bias, x, Op::Conv2d, "bias");
  if (bias.defined() && bias.numel() != weight.dim(0))
    fail("conv2d: bias ", shape_str(bias.shape()), " for weight ", shape_str(weight.shape()));
  if (stride < 1 || padding < 0) fail("conv2d: stride ", stride, ", padding ", padding);
  const int64_t ho = (x.dim(2) + 2 * padding - weight.dim(2)) / stride + 1;
  const int64_t wo = (x.dim(3) + 2 * padding - weight.dim(3)) / stride + 1;
  if (ho < 1 || wo < 1) fail("conv2d: input ", shape_str(x.shape()), " is smaller than the kernel ", shape_str(weight.shape()));
  Tensor y = Tensor::empty({x.dim(0), weight.dim(0), ho, wo}, x.dtype(), x.device());
  add_flops(2.0 * double(y.numel()) * double(weight.numel() / weight.dim(0)));
  if (compute != DType::F32 && compute != DType::BF16) fail("conv2d: products are computed in F32 or BF16, not ", dtype_name(compute));
  backend(x.device()).ops().conv2d(x, weight, bias, stride, padding, compute, y);
  return y;
}

Tensor group_norm(const Tensor& x, int64_t groups, const Tensor& weight, const Tensor& bias, float eps, Activation act) {
  require_activations(x, Op::GroupNorm, "input");
  if (x.ndim() < 2 || groups < 1 || x.dim(1) % groups != 0)
    fail("group_norm: ", groups, " groups for input ", shape_str(x.shape()));
  for (const Tensor* p : {&weight, &bias}) {
    require_param(*p, x, Op::GroupNorm, "parameter");
    if (p->defined() && p->numel() != x.dim(1))
      fail("group_norm: parameter ", shape_str(p->shape()), " for input ", shape_str(x.shape()));
  }
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  backend(x.device()).ops().group_norm(x, groups, weight, bias, eps, act, y);
  return y;
}

Tensor upsample_nearest2x(const Tensor& x) {
  require_activations(x, Op::UpsampleNearest2x, "input");
  if (x.ndim() != 4) fail("upsample: input must be [N, C, H, W], got ", shape_str(x.shape()));
  Tensor y = Tensor::empty({x.dim(0), x.dim(1), 2 * x.dim(2), 2 * x.dim(3)}, x.dtype(), x.device());
  backend(x.device()).ops().upsample_nearest2x(x, y);
  return y;
}

Tensor pad_bottom_right(const Tensor& x, int64_t amount) {
  require_activations(x, Op::PadBottomRight, "input");
  if (x.ndim() != 4 || amount < 0) fail("pad: input must be [N, C, H, W] and the amount ≥ 0, got ", shape_str(x.shape()));
  Tensor y = Tensor::empty({x.dim(0), x.dim(1), x.dim(2) + amount, x.dim(3) + amount}, x.dtype(), x.device());
  backend(x.device()).ops().pad_bottom_right(x, y);
  return y;
}

uint64_t torch_randn(uint64_t seed, uint64_t offset, Tensor& out) {
  require_activations(out, Op::TorchRandn, "output");
  return backend(out.device()).ops().torch_randn(seed, offset, out);
}

bool recordings_enabled(Device device) { return backend(device).supports(Op::Record, {}); }

Recording Recording::record(Device device, const std::function<void()>& body) {
  if (!recordings_enabled(device)) fail("op recordings are not available on ", device.name());
  const OpTable& table = backend(device).ops();
  Recording r;
  r.device_ = device;
  auto release = table.release_recording;
  r.handle_ = std::shared_ptr<void>(table.record(device, body), [device, release](void* p) { release(device, p); });
  return r;
}

void Recording::replay() const {
  if (!handle_) fail("replay of an empty op recording");
  backend(device_).ops().replay(device_, handle_.get());
}

Tensor transpose12(const Tensor& x) {
  require_activations(x, Op::Transpose12, "input");
  if (x.ndim() != 3) fail("transpose12: input must be [N, A, B], got ", shape_str(x.shape()));
  Tensor y = Tensor::empty({x.dim(0), x.dim(2), x.dim(1)}, x.dtype(), x.device());
  backend(x.device()).ops().transpose12(x, y);
  return y;
}

void add_channel_bias_(Tensor& x, const Tensor& v) {
  require_activations(x, Op::AddChannelBias, "x");
  require_activations(v, Op::AddChannelBias, "v");
  require_like(v, x, Op::AddChannelBias, "v");
  require_same_dtype(v, x, Op::AddChannelBias, "v");
  if (x.ndim() < 2 || v.shape() != Shape{x.dim(0), x.dim(1)})
    fail("add_channel_bias: ", shape_str(v.shape()), " does not give one value per sample and channel of ",
         shape_str(x.shape()));
  backend(x.device()).ops().add_channel_bias(x, v);
}

Tensor concat1(const Tensor& a, const Tensor& b) {
  require_activations(a, Op::Concat1, "a");
  require_activations(b, Op::Concat1, "b");
  require_like(b, a, Op::Concat1, "b");
  require_same_dtype(b, a, Op::Concat1, "b");
  bool ok = a.ndim() == b.ndim() && a.ndim() >= 2 && (a.dim(0) == b.dim(0) || a.dim(0) == 1);
  for (int i = 2; ok && i < a.ndim(); ++i) ok = a.dim(i) == b.dim(i);
  if (!ok) fail("concat: cannot join ", shape_str(a.shape()), " and ", shape_str(b.shape()), " along dimension 1");
  Shape shape = b.shape();
  shape[1] = a.dim(1) + b.dim(1);
  Tensor y = Tensor::empty(shape, a.dtype(), a.device());
  backend(a.device()).ops().concat1(a, b, y);
  return y;
}

Tensor geglu(const Tensor& x) {
  require_activations(x, Op::Geglu, "input");
  if (x.ndim() < 1 || x.dim(-1) % 2 != 0) fail("geglu: the last dimension of ", shape_str(x.shape()), " is not even");
  Shape shape = x.shape();
  shape.back() /= 2;
  Tensor y = Tensor::empty(shape, x.dtype(), x.device());
  backend(x.device()).ops().geglu(x, y);
  return y;
}

Tensor select_tokens(const Tensor& x, const std::vector<int64_t>& positions) {
  require_activations(x, Op::SelectTokens, "input");
  if (x.ndim() != 3 || static_cast<int64_t>(positions.size()) != x.dim(0))
    fail("select_tokens: ", positions.size(), " positions for input ", shape_str(x.shape()));
  for (size_t b = 0; b < positions.size(); ++b)
    if (positions[b] < 0 || positions[b] >= x.dim(1))
      fail("select_tokens: position ", positions[b], " of sample ", b, " is outside its ", x.dim(1), " tokens");
  Tensor y = Tensor::empty({x.dim(0), x.dim(2)}, x.dtype(), x.device());
  backend(x.device()).ops().select_tokens(x, positions, y);
  return y;
}

Tensor patchify(const Tensor& pixels, int64_t patch_height, int64_t patch_width) {
  require_activations(pixels, Op::Patchify, "input");
  if (pixels.ndim() != 4 || patch_height < 1 || patch_width < 1 || pixels.dim(2) < patch_height ||
      pixels.dim(3) < patch_width)
    fail("patchify: ", patch_height, "×", patch_width, " patches of ", shape_str(pixels.shape()));
  const int64_t n = (pixels.dim(2) / patch_height) * (pixels.dim(3) / patch_width);
  Tensor y = Tensor::empty({pixels.dim(0), n, pixels.dim(1) * patch_height * patch_width}, pixels.dtype(), pixels.device());
  backend(pixels.device()).ops().patchify(pixels, patch_height, patch_width, y);
  return y;
}

}  // namespace ops
}  // namespace mmx
