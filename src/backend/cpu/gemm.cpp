// GEMM through oneDNN's dnnl_sgemm (row-major, OpenMP runtime): chosen over OpenBLAS and BLIS by
// bench/gemm_library_choice.cpp on the models' shapes (docs/gemm-library.md).
#include <dnnl.h>
#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>

#include "core/half.hpp"
#include "core/thread_pool.hpp"

#include "backend/cpu/cpu_ops.hpp"
#include "backend/cpu/gemm_lowp.hpp"
#include "backend/cpu/gemm_packed.hpp"
#include "core/log.hpp"

namespace mmx::cpu {

void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
          const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {  // C = beta·C; oneDNN rejects K = 0
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = beta == 0.f ? 0.f : beta * c[i * ldc + j];
    return;
  }
  // oneDNN starts its OpenMP team from the calling thread: inside a chunk of mmx's pool the other
  // threads are busy already, so there it runs alone.
  const bool alone = in_parallel_chunk();
  const int team = alone ? omp_get_max_threads() : 0;
  if (alone) omp_set_num_threads(1);
  const dnnl_status_t status = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb,
                                          beta, c, ldc);
  if (alone) omp_set_num_threads(team);
  if (status != dnnl_success)
    fail("dnnl_sgemm failed (status ", static_cast<int>(status), ") for m=", m, " n=", n, " k=", k);
}

void gemm_ref(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
              int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double sum = 0;
      for (int64_t p = 0; p < k; ++p)
        sum += double(trans_a ? a[p * lda + i] : a[i * lda + p]) * double(trans_b ? b[j * ldb + p] : b[p * ldb + j]);
      c[i * ldc + j] = static_cast<float>(alpha * sum + (beta == 0.f ? 0.0 : double(beta) * c[i * ldc + j]));
    }
}

namespace {
// Without the packed kernels, a half-precision weight is widened whole when it has at most this many
// values (64 MiB of f32: every SDXL weight), else in panels of output rows of this size (smaller panels
// cost up to 2.5× in the GEMM: each call re-packs the activations; docs/performance.md).
constexpr int64_t kWeightPanelFloats = int64_t(16) << 20;
}  // namespace

float* ScratchBuffer::get(int64_t floats, const char* what) {
  if (floats > capacity_) {
    const size_t bytes = (static_cast<size_t>(floats) * sizeof(float) + 63) / 64 * 64;
    data_.reset(static_cast<float*>(std::aligned_alloc(64, bytes)));
    if (!data_) fail("out of memory: ", floats, " floats of scratch for ", what);
    capacity_ = floats;
  }
  return data_.get();
}

float* weight_scratch(int64_t floats) {
  thread_local ScratchBuffer buffer;
  return buffer.get(floats, "a widened weight");
}

void widen_to_f32(const Tensor& t, int64_t first, int64_t count, float* dst) {
  if (first < 0 || count < 0 || first + count > t.numel()) fail("widen_to_f32: range outside ", shape_str(t.shape()));
  const DType dtype = t.dtype();
  if (dtype == DType::F32) {
    std::memcpy(dst, t.data<float>() + first, sizeof(float) * count);
    return;
  }
  if (dtype != DType::F16 && dtype != DType::BF16) fail("widen_to_f32: unsupported dtype ", dtype_name(dtype));
  const uint16_t* src = static_cast<const uint16_t*>(t.raw()) + first;
  parallel_for(count, int64_t(1) << 15, [&](int64_t begin, int64_t end) {
    const size_t len = static_cast<size_t>(end - begin);
    if (dtype == DType::F16) f16_to_f32(src + begin, dst + begin, len);
    else bf16_to_f32(src + begin, dst + begin, len);
  });
}

namespace {
ops::PackedWeight pack_lowp(const Tensor& weight, LowpType type) {
  const int64_t n = weight.dim(0), k = weight.dim(1);
  ops::PackedWeight packed;
  packed.data = Tensor::empty({lowp_panel_bytes(type, n, k)}, DType::U8);
  if (type == LowpType::Int8) {
    packed.scales = Tensor::empty({n});
    packed.offsets = Tensor::empty({n}, DType::I32);
  }
  pack_lowp_weight(weight, type, packed.data.raw_mutable(), type == LowpType::Int8 ? packed.scales.data<float>() : nullptr,
                   type == LowpType::Int8 ? packed.offsets.data<int32_t>() : nullptr);
  packed.out_features = n;
  packed.in_features = k;
  packed.layout = kLowpNr;
  packed.compute = type == LowpType::BF16 ? DType::BF16 : DType::I8;
  return packed;
}
}  // namespace

ops::PackedWeight pack_linear_weight(const Tensor& weight, DType compute) {
  if (compute == DType::BF16 || compute == DType::I8) {
    const LowpType type = compute == DType::BF16 ? LowpType::BF16 : LowpType::Int8;
    if (lowp_kernel(type)) return pack_lowp(weight, type);
    static std::once_flag told[2];
    std::call_once(told[compute == DType::BF16 ? 0 : 1], [&] {
      log_warn("this CPU has no ", lowp_units(type), " unit: ", compute == DType::BF16 ? "bf16" : "int8",
               " linear layers are computed in f32 (correct, not faster)");
    });
    // bf16 still means bf16 weights (as model.to(torch.bfloat16)): rounded, then widened into f32 panels.
    if (compute == DType::BF16 && weight.dtype() != DType::BF16) return pack_linear_weight(weight.to(DType::BF16), DType::F32);
  }
  const GemmKernel* kernel = gemm_kernel();
  if (!kernel) return {};
  const int64_t n = weight.dim(0), k = weight.dim(1);
  ops::PackedWeight packed;
  packed.data = Tensor::empty({packed_panel_floats(n, k, kernel->nr)});
  pack_weight_panels(weight, kernel->nr, packed.data.data<float>());
  packed.out_features = n;
  packed.in_features = k;
  packed.layout = kernel->nr;
  return packed;
}

namespace {
// The path for CPUs without AVX2 + FMA: dnnl_sgemm, with the fusions done as separate passes.
void linear_dnnl(const Tensor& x, const Tensor& weight, const Tensor& bias, const ops::LinearFusion& fusion, Tensor& y) {
  const int64_t k = x.dim(-1), n = weight.dim(0), rows = x.numel() / (k ? k : 1);
  float* out = y.data<float>();
  float beta = 0.f;
  if (bias.defined()) {  // start from the bias and accumulate the product onto it
    const float* b = bias.data<float>();
    parallel_for(rows, std::max<int64_t>(1, (1 << 16) / std::max<int64_t>(n, 1)), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) std::memcpy(out + r * n, b, sizeof(float) * n);
    });
    beta = 1.f;
  }
  if (weight.dtype() == DType::F32) {
    gemm(false, true, rows, n, k, 1.f, x.data<float>(), k, weight.data<float>(), k, beta, out, n);
  } else {
    // y[:, n0:n0+nb] = x · W[n0:n0+nb]ᵀ with that panel of W widened to f32.
    const int64_t panel = std::clamp<int64_t>(kWeightPanelFloats / std::max<int64_t>(k, 1), 1, n);
    float* wide = weight_scratch(panel * k);
    for (int64_t n0 = 0; n0 < n; n0 += panel) {
      const int64_t nb = std::min(panel, n - n0);
      widen_to_f32(weight, n0 * k, nb * k, wide);
      gemm(false, true, rows, nb, k, 1.f, x.data<float>(), k, wide, k, beta, out + n0, n);
    }
  }
  if (fusion.residual.defined()) add(y, fusion.residual);
  if (fusion.act != ops::Activation::Identity) activation(y, fusion.act);
}
}  // namespace

namespace {
// What linear() fuses into each output tile: bias, residual (the output's shape) and activation.
GemmEpilogue linear_epilogue(const Tensor& bias, const ops::LinearFusion& fusion, int64_t n) {
  GemmEpilogue epilogue;
  epilogue.bias = bias.defined() ? bias.data<float>() : nullptr;
  if (fusion.residual.defined()) {
    epilogue.residual = fusion.residual.data<float>();
    epilogue.ld_residual = n;
  }
  epilogue.act = fusion.act;
  return epilogue;
}
}  // namespace

void linear(const Tensor& x, const Tensor& weight, const ops::PackedWeight& packed, const Tensor& bias,
            const ops::LinearFusion& fusion, Tensor& y) {
  if (packed.defined() && packed.compute != DType::F32) {  // packed for a low-precision unit
    const LowpType type = packed.compute == DType::BF16 ? LowpType::BF16 : LowpType::Int8;
    const LowpKernel* lowp = lowp_kernel(type);
    if (!lowp) fail("linear: the weight was packed for a ", dtype_name(packed.compute), " unit this CPU lacks");
    LowpWeight w;
    w.type = type;
    w.n = packed.out_features;
    w.k = packed.in_features;
    w.k_padded = lowp_k_padded(type, w.k);
    w.panels = packed.data.raw();
    if (type == LowpType::Int8) {
      w.scales = packed.scales.data<float>();
      w.offsets = packed.offsets.data<int32_t>();
    }
    const int64_t rows = x.numel() / (w.k ? w.k : 1);
    gemm_lowp(*lowp, rows, x.data<float>(), w.k, w, y.data<float>(), w.n, linear_epilogue(bias, fusion, w.n));
    return;
  }
  const GemmKernel* kernel = gemm_kernel();
  const bool use_packed = kernel && packed.defined() && packed.layout == kernel->nr;
  if (!kernel || (!use_packed && !weight.defined())) {
    if (!weight.defined()) fail("linear: the weight was packed for another CPU kernel and not kept");
    return linear_dnnl(x, weight, bias, fusion, y);
  }
  const int64_t k = x.dim(-1), n = y.dim(-1), rows = x.numel() / (k ? k : 1);
  const float* panels = nullptr;
  if (use_packed) {
    panels = packed.data.data<float>();
  } else {  // packed per call, widening a stored f16/bf16 weight on the way
    float* scratch = weight_scratch(packed_panel_floats(n, k, kernel->nr));
    pack_weight_panels(weight, kernel->nr, scratch);
    panels = scratch;
  }
  const GemmEpilogue epilogue = linear_epilogue(bias, fusion, n);
  gemm_packed(*kernel, rows, n, k, x.data<float>(), k, panels, y.data<float>(), n, epilogue);
}

void add_gemm_ops(OpTable& ops) {
  ops.gemm = gemm;
  ops.linear = linear;
  ops.pack_linear_weight = pack_linear_weight;
}

}  // namespace mmx::cpu
