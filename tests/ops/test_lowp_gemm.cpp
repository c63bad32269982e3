// The low-precision GEMM (gemm_lowp.hpp): every bf16 and int8 kernel this CPU runs against its scalar
// twin and against double-precision sums of the rounded / quantized operands, on odd shapes (rows around
// the tile heights 4, 6, 14, 16, 32; columns off the 32-wide panel; K off the 32/64 padding and across the
// 1024-byte K block), with every epilogue part. The kernels this CPU lacks are named in the output; their
// twins still run.
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "backend/cpu/cpu_ops.hpp"
#include "backend/cpu/gemm_lowp.hpp"
#include "backend/ops.hpp"
#include "core/cpu.hpp"
#include "core/half.hpp"
#include "test_util.hpp"

using namespace mmx;

namespace {
using test::random_tensor;

const std::vector<int64_t> kRows = {1, 5, 13, 15, 17, 31, 33, 57, 301};
const std::vector<int64_t> kCols = {1, 29, 37, 3 * 32 + 17};
const std::vector<int64_t> kDepths = {1, 13, 63, 65, 385, 1100};  // 1100 bf16: across AMX's 2048-byte K block
const std::vector<int64_t> kDepthsInt8 = {1, 13, 63, 65, 385, 1100, 2100};  // int8: 1100 and 2100 bytes

struct Packed {
  std::vector<uint8_t> panels;
  std::vector<float> scales;
  std::vector<int32_t> offsets;
  cpu::LowpWeight weight;
};

Packed pack(const Tensor& w, cpu::LowpType type) {
  Packed p;
  const int64_t n = w.dim(0), k = w.dim(1);
  p.panels.resize(static_cast<size_t>(cpu::lowp_panel_bytes(type, n, k)));
  p.scales.resize(static_cast<size_t>(n));
  p.offsets.resize(static_cast<size_t>(n));
  cpu::pack_lowp_weight(w, type, p.panels.data(), p.scales.data(), p.offsets.data());
  p.weight = {type, n, k, cpu::lowp_k_padded(type, k), p.panels.data(), p.scales.data(), p.offsets.data()};
  return p;
}

// The stated quantization, written out again: q = round-half-even(x · 127 / max|x|), x ≈ q · max|x| / 127.
std::vector<double> quantized(const float* x, int64_t k) {
  float absmax = 0.f;
  for (int64_t p = 0; p < k; ++p) absmax = std::max(absmax, std::fabs(x[p]));
  const float inv = absmax > 0.f ? 127.f / absmax : 0.f, scale = absmax / 127.f;
  std::vector<double> out(static_cast<size_t>(k));
  for (int64_t p = 0; p < k; ++p) out[p] = double(std::nearbyint(x[p] * inv)) * scale;
  return out;
}

// Bias + residual + `act` when `fused`, else nothing.
cpu::GemmEpilogue epilogue(bool fused, const Tensor& bias, const Tensor& residual, ops::Activation act) {
  cpu::GemmEpilogue ep;
  if (!fused) return ep;
  ep.bias = bias.data<float>();
  ep.residual = residual.data<float>();
  ep.ld_residual = residual.dim(1);
  ep.act = act;
  return ep;
}

std::vector<const cpu::LowpKernel*> kernels(const std::vector<const char*>& names, std::string& ran) {
  std::vector<const cpu::LowpKernel*> out;
  for (const char* name : names) {
    if (const cpu::LowpKernel* k = cpu::lowp_kernel_named(name)) {
      out.push_back(k);
      ran += std::string(ran.empty() ? "" : ", ") + name;
    } else {
      std::printf("  (%s: this CPU lacks it; its scalar twin is tested)\n", name);
    }
  }
  return out;
}
}  // namespace

// int8 sums are exact, so every kernel gives the scalar twin's output bit for bit; the twin itself is
// checked against double sums of the dequantized operands (1e-6 relative: the f32 rounding of the scale).
TEST(LowpGemm, Int8KernelsEqualTheScalarTwinBitForBit) {
  std::string ran;
  const auto all = kernels({"amx-int8", "avx512-vnni", "avx-vnni"}, ran);
  const cpu::LowpKernel* twin = cpu::lowp_kernel_named("scalar-int8");
  ASSERT_NE(twin, nullptr);
  uint32_t seed = 500;
  for (int64_t m : kRows)
    for (int64_t n : kCols)
      for (int64_t k : kDepthsInt8) {
        const Tensor a = random_tensor({m, k + 3}, seed++);  // lda = k + 3
        const Tensor w = random_tensor({n, k}, seed++, 0.1f);
        const Tensor bias = random_tensor({n}, seed++), residual = random_tensor({m, n}, seed++);
        const Packed packed = pack(w, cpu::LowpType::Int8);
        const int64_t ldc = n + 2;
        for (int fused = 0; fused < 2; ++fused) {
          const cpu::GemmEpilogue ep = epilogue(fused, bias, residual, ops::Activation::GeluErf);
          std::vector<float> want(static_cast<size_t>(m * ldc), 7.f);
          cpu::gemm_lowp(*twin, m, a.data<float>(), k + 3, packed.weight, want.data(), ldc, ep);
          if (!fused) {
            std::vector<std::vector<double>> qw;
            for (int64_t j = 0; j < n; ++j) qw.push_back(quantized(w.data<float>() + j * k, k));
            for (int64_t i = 0; i < m; ++i) {
              const std::vector<double> qa = quantized(a.data<float>() + i * (k + 3), k);
              for (int64_t j = 0; j < n; ++j) {
                double sum = 0, mag = 0;
                for (int64_t p = 0; p < k; ++p) {
                  sum += qa[p] * qw[j][p];
                  mag += std::abs(qa[p] * qw[j][p]);
                }
                ASSERT_NEAR(want[i * ldc + j], sum, 1e-6 * mag + 1e-30)
                    << "scalar-int8 m=" << m << " n=" << n << " k=" << k << " at " << i << "," << j;
              }
            }
          }
          for (const cpu::LowpKernel* kernel : all) {
            std::vector<float> got(static_cast<size_t>(m * ldc), 7.f);
            cpu::gemm_lowp(*kernel, m, a.data<float>(), k + 3, packed.weight, got.data(), ldc, ep);
            for (int64_t i = 0; i < m * ldc; ++i)
              ASSERT_EQ(std::memcmp(&got[i], &want[i], 4), 0)
                  << kernel->name << " m=" << m << " n=" << n << " k=" << k << " fused=" << fused << " at " << i / ldc
                  << "," << i % ldc << ": " << got[i] << " vs " << want[i];
          }
        }
      }
  std::printf("  int8 kernels run: %s\n", ran.empty() ? "none (scalar twin only)" : ran.c_str());
}

// bf16: products of two bf16 values are exact in f32, so the kernels differ only in the order of the f32
// sums: each is held to double sums of the rounded operands within the f32 GEMM's bound.
TEST(LowpGemm, Bf16KernelsMatchDoubleSumsOfTheRoundedOperands) {
  std::string ran;
  auto all = kernels({"amx-bf16", "avx512-bf16"}, ran);
  all.push_back(cpu::lowp_kernel_named("scalar-bf16"));
  uint32_t seed = 900;
  for (int64_t m : kRows)
    for (int64_t n : kCols)
      for (int64_t k : kDepths)
        for (DType stored : {DType::F32, DType::F16, DType::BF16}) {
          const Tensor a = random_tensor({m, k + 3}, seed++);
          const Tensor w = random_tensor({n, k}, seed++, 0.1f).to(stored), wide = w.to(DType::F32);
          const Tensor bias = random_tensor({n}, seed++), residual = random_tensor({m, n}, seed++);
          const Packed packed = pack(w, cpu::LowpType::BF16);
          // Double sums of the rounded operands (and of their magnitudes, for the bound), once per shape.
          std::vector<double> ra(static_cast<size_t>(m * k)), rw(static_cast<size_t>(n * k));
          for (int64_t i = 0; i < m; ++i)
            for (int64_t p = 0; p < k; ++p) ra[i * k + p] = bf16_to_f32(f32_to_bf16(a.data<float>()[i * (k + 3) + p]));
          for (int64_t i = 0; i < n * k; ++i) rw[i] = bf16_to_f32(f32_to_bf16(wide.data<float>()[i]));
          std::vector<double> sums(static_cast<size_t>(m * n)), mags(static_cast<size_t>(m * n));
          for (int64_t i = 0; i < m; ++i)
            for (int64_t j = 0; j < n; ++j) {
              double sum = 0, mag = 0;
              for (int64_t p = 0; p < k; ++p) {
                const double prod = ra[i * k + p] * rw[j * k + p];
                sum += prod;
                mag += std::abs(prod);
              }
              sums[i * n + j] = sum;
              mags[i * n + j] = mag;
            }
          const int64_t ldc = n + 2;
          for (const cpu::LowpKernel* kernel : all)
            for (int fused = 0; fused < 2; ++fused) {
              const cpu::GemmEpilogue ep = epilogue(fused, bias, residual, ops::Activation::Relu);
              std::vector<float> c(static_cast<size_t>(m * ldc), 7.f);
              cpu::gemm_lowp(*kernel, m, a.data<float>(), k + 3, packed.weight, c.data(), ldc, ep);
              for (int64_t i = 0; i < m; ++i)
                for (int64_t j = 0; j < ldc; ++j) {
                  if (j >= n) {
                    ASSERT_EQ(c[i * ldc + j], 7.f) << kernel->name << ": column " << j << " past n=" << n << " written";
                    continue;
                  }
                  double want = sums[i * n + j];
                  if (fused) want = std::max(0.0, want + bias.data<float>()[j] + residual.data<float>()[i * n + j]);
                  ASSERT_NEAR(c[i * ldc + j], want, 2e-6 * std::sqrt(double(k)) * (1 + mags[i * n + j]))
                      << kernel->name << " m=" << m << " n=" << n << " k=" << k << " " << dtype_name(stored)
                      << " fused=" << fused << " at " << i << "," << j;
                }
            }
        }
  std::printf("  bf16 kernels run: %s\n", ran.empty() ? "none (scalar twin only)" : ran.c_str());
}

// The vector row conversions equal the scalar rules: bf16 round-to-nearest-even (normal numbers), int8 the
// stated quantization (checked through the twin kernel above); here, K padding and the row scales.
TEST(LowpGemm, RowConversionsRoundAsStatedAndPadK) {
  const int64_t m = 7, k = 77, kp = cpu::lowp_k_padded(cpu::LowpType::Int8, k);
  ASSERT_EQ(kp, 128);
  ASSERT_EQ(cpu::lowp_k_padded(cpu::LowpType::BF16, k), 96);
  Tensor a = random_tensor({m, k}, 77, 3.f);
  a.data<float>()[5] = 0.f;
  for (int64_t p = 0; p < k; ++p) a.data<float>()[2 * k + p] = 0.f;  // an all-zero row: scale 0, q = 0
  std::vector<uint16_t> h(static_cast<size_t>(m * kp), 0xffff);
  cpu::convert_rows_bf16(a.data<float>(), k, m, k, kp, h.data());
  std::vector<uint8_t> q(static_cast<size_t>(m * kp), 0);
  std::vector<float> scales(static_cast<size_t>(m));
  cpu::quantize_rows_int8(a.data<float>(), k, m, k, kp, q.data(), scales.data());
  for (int64_t i = 0; i < m; ++i) {
    const std::vector<double> want = quantized(a.data<float>() + i * k, k);
    for (int64_t p = 0; p < kp; ++p) {
      if (p >= k) {
        ASSERT_EQ(h[i * kp + p], 0) << "bf16 padding at " << i << "," << p;
        ASSERT_EQ(q[i * kp + p], 128) << "int8 padding (zero + 128) at " << i << "," << p;
        continue;
      }
      ASSERT_EQ(h[i * kp + p], f32_to_bf16(a.data<float>()[i * k + p])) << i << "," << p;
      ASSERT_EQ(double(int(q[i * kp + p]) - 128) * scales[i], want[p]) << i << "," << p;
    }
  }
  EXPECT_EQ(scales[2], 0.f);
}

// linear() at BF16 / I8: a weight packed for the CPU's unit gives gemm_lowp's numbers, fused epilogues
// equal the separate ops, and without a unit the weight is packed for f32 and gives the f32 result.
TEST(LowpGemm, LinearPackedForLowPrecisionEqualsItsGemmAndFusesLikeF32) {
  const Tensor x = random_tensor({5, 9, 70}, 30), w = random_tensor({45, 70}, 31, 0.2f), b = random_tensor({45}, 32);
  const Tensor residual = random_tensor({5, 9, 45}, 33);
  for (DType compute : {DType::BF16, DType::I8}) {
    const ops::PackedWeight packed = ops::pack_linear_weight(w, compute);
    if (!packed.defined()) GTEST_SKIP() << "no packed GEMM on this CPU";
    const cpu::LowpType type = compute == DType::BF16 ? cpu::LowpType::BF16 : cpu::LowpType::Int8;
    if (!cpu::lowp_kernel(type)) {
      EXPECT_EQ(packed.compute, DType::F32) << "no unit: packed for f32";
      // bf16 still rounds the weight (as model.to(torch.bfloat16)); int8 falls back to the f32 weight.
      const Tensor used = compute == DType::BF16 ? w.to(DType::BF16) : w;
      test::expect_close("fallback", ops::linear(x, Tensor(), packed, b, {}), ops::linear(x, used, b), 0.0);
      continue;
    }
    ASSERT_EQ(packed.compute, compute);
    const Packed mine = pack(w, type);
    std::vector<float> want(5 * 9 * 45);
    cpu::GemmEpilogue ep;
    ep.bias = b.data<float>();
    cpu::gemm_lowp(*cpu::lowp_kernel(type), 45, x.data<float>(), 70, mine.weight, want.data(), 45, ep);
    const Tensor got = ops::linear(x, Tensor(), packed, b, {});
    ASSERT_EQ(std::memcmp(got.data<float>(), want.data(), want.size() * 4), 0) << dtype_name(compute);
    for (ops::Activation act : {ops::Activation::Identity, ops::Activation::GeluErf}) {
      Tensor separate = ops::linear(x, Tensor(), packed, b, {});
      ops::add_(separate, residual);
      ops::activation_(separate, act);
      test::expect_close(std::string("fused ") + dtype_name(compute), ops::linear(x, Tensor(), packed, b, {residual, act}),
                         separate, 0.0);
    }
  }
}

// One place chooses: the fastest unit this CPU has, never a scalar twin.
TEST(LowpGemm, DispatchPrefersTilesThenWideVectors) {
  const CpuFeatures& f = cpu_features();
  const cpu::LowpKernel* bf16 = cpu::lowp_kernel(cpu::LowpType::BF16);
  const cpu::LowpKernel* int8 = cpu::lowp_kernel(cpu::LowpType::Int8);
  std::printf("  CPU: avx512_bf16=%d amx_bf16=%d avx512_vnni=%d avx_vnni=%d amx_int8=%d -> bf16 %s, int8 %s\n",
              f.avx512_bf16, f.amx_bf16, f.avx512_vnni, f.avx_vnni, f.amx_int8, bf16 ? bf16->name : "f32",
              int8 ? int8->name : "f32");
  if (std::getenv("MMX_GEMM_LOWP")) GTEST_SKIP() << "MMX_GEMM_LOWP overrides the choice";
  EXPECT_STREQ(bf16 ? bf16->name : "none", f.amx_bf16 ? "amx-bf16" : f.avx512_bf16 ? "avx512-bf16" : "none");
  EXPECT_STREQ(int8 ? int8->name : "none",
               f.amx_int8 ? "amx-int8" : f.avx512_vnni ? "avx512-vnni" : f.avx_vnni ? "avx-vnni" : "none");
}

// conv2d at BF16 (the UNet's and the VAE's convolutions at --dtype bf16): against double sums of the
// bf16-rounded weight and input, on shapes off every block size (K = C·k·k off the 32 padding, output
// channels off the 32-row AMX tile, pixels off the 32-wide panel), strides 1 and 2, padding, 1×1 and 3×3.
TEST(LowpGemm, Bf16ConvolutionMatchesDoubleSumsOfTheRoundedOperands) {
  if (!cpu::lowp_kernel(cpu::LowpType::BF16)) GTEST_SKIP() << "no bf16 unit: conv2d computes in f32";
  struct Case { int64_t n, c, h, w, o, k, stride, padding; };
  uint32_t seed = 1300;
  for (const Case& t : {Case{1, 3, 9, 11, 5, 3, 1, 1}, Case{2, 7, 13, 10, 37, 3, 2, 1}, Case{1, 40, 6, 7, 33, 1, 1, 0},
                        Case{1, 19, 12, 12, 70, 3, 1, 0}})
    for (DType stored : {DType::F32, DType::F16}) {
      const Tensor x = random_tensor({t.n, t.c, t.h, t.w}, seed++);
      const Tensor w = random_tensor({t.o, t.c, t.k, t.k}, seed++, 0.1f).to(stored), b = random_tensor({t.o}, seed++);
      const Tensor y = ops::conv2d(x, w, b, t.stride, t.padding, DType::BF16);
      const Tensor wide = w.to(DType::F32);
      const int64_t ho = y.dim(2), wo = y.dim(3);
      auto round = [](float v) { return double(bf16_to_f32(f32_to_bf16(v))); };
      for (int64_t in = 0; in < t.n; ++in)
        for (int64_t oc = 0; oc < t.o; ++oc)
          for (int64_t oy = 0; oy < ho; ++oy)
            for (int64_t ox = 0; ox < wo; ++ox) {
              double want = b.data<float>()[oc], mag = 0;
              for (int64_t ic = 0; ic < t.c; ++ic)
                for (int64_t dy = 0; dy < t.k; ++dy)
                  for (int64_t dx = 0; dx < t.k; ++dx) {
                    const int64_t iy = oy * t.stride - t.padding + dy, ix = ox * t.stride - t.padding + dx;
                    if (iy < 0 || iy >= t.h || ix < 0 || ix >= t.w) continue;
                    const double prod = round(x.data<float>()[((in * t.c + ic) * t.h + iy) * t.w + ix]) *
                                        round(wide.data<float>()[((oc * t.c + ic) * t.k + dy) * t.k + dx]);
                    want += prod;
                    mag += std::abs(prod);
                  }
              const float got = y.data<float>()[((in * t.o + oc) * ho + oy) * wo + ox];
              ASSERT_NEAR(got, want, 2e-6 * std::sqrt(double(t.c * t.k * t.k)) * (1 + mag))
                  << "conv c=" << t.c << " o=" << t.o << " k=" << t.k << " stride=" << t.stride << " at " << in << ","
                  << oc << "," << oy << "," << ox;
            }
    }
}
