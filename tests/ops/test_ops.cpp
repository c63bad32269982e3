// Each op against its plain reference: GEMM shape sweep (edges, transposes, alpha/beta, strides),
// attention with padding masks and causal masks, layer norm, softmax, activations.
#include <cmath>
#include <random>

#include "backend/cpu/cpu_ops.hpp"
#include "backend/cpu/gemm_packed.hpp"
#include "backend/ops.hpp"
#include "core/cpu.hpp"
#include "test_util.hpp"

using namespace mmx;

namespace {
using test::random_tensor;
}  // namespace

TEST(Ops, GemmMatchesReferenceOnShapeSweep) {
  const int64_t sizes[] = {1, 2, 7, 16, 17, 33, 64, 129};
  uint32_t seed = 1;
  for (int64_t m : sizes)
    for (int64_t n : {1, 5, 31, 64, 97})
      for (int64_t k : {1, 3, 8, 65, 300})
        for (int trans = 0; trans < 4; ++trans) {
          const bool ta = trans & 1, tb = trans & 2;
          const int64_t lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 1, ldc = n + 2;  // strided
          const Tensor a = random_tensor({(ta ? k : m) * lda}, seed++), b = random_tensor({(tb ? n : k) * ldb}, seed++);
          Tensor c = random_tensor({m * ldc}, seed++), c_ref = c.clone();
          const float alpha = 0.75f, beta = (trans == 2) ? 0.f : -0.5f;
          ops::gemm(ta, tb, m, n, k, alpha, a.data<float>(), lda, b.data<float>(), ldb, beta, c.data<float>(), ldc);
          cpu::gemm_ref(ta, tb, m, n, k, alpha, a.data<float>(), lda, b.data<float>(), ldb, beta, c_ref.data<float>(), ldc);
          for (int64_t i = 0; i < m; ++i)
            for (int64_t j = 0; j < ldc; ++j) {
              const float got = c.data<float>()[i * ldc + j], want = c_ref.data<float>()[i * ldc + j];
              // Padding columns (j ≥ n) must be untouched; sums of K products carry ~sqrt(K)·ε error.
              ASSERT_NEAR(got, want, j >= n ? 0.0 : 2e-6 * (k + 1) * std::sqrt(double(k)))
                  << "m=" << m << " n=" << n << " k=" << k << " ta=" << ta << " tb=" << tb << " at " << i << "," << j;
            }
        }
}

TEST(Ops, GemmWithZeroK) {
  std::vector<float> c = {1, 2, 3, 4};
  ops::gemm(false, false, 2, 2, 0, 1.f, nullptr, 1, nullptr, 2, 0.5f, c.data(), 2);
  EXPECT_EQ(c[3], 2.f);
}

TEST(Ops, LinearAddsBias) {
  const Tensor x = random_tensor({2, 3, 5}, 10), w = random_tensor({4, 5}, 11), b = random_tensor({4}, 12);
  const Tensor y = ops::linear(x, w, b);
  ASSERT_EQ(shape_str(y.shape()), "[2, 3, 4]");
  for (int64_t r = 0; r < 6; ++r)
    for (int64_t o = 0; o < 4; ++o) {
      double s = b.data<float>()[o];
      for (int64_t i = 0; i < 5; ++i) s += double(x.data<float>()[r * 5 + i]) * w.data<float>()[o * 5 + i];
      EXPECT_NEAR(y.data<float>()[r * 4 + o], s, 1e-5);
    }
  EXPECT_THROW(ops::linear(x, random_tensor({4, 6}, 1), Tensor()), Error);
}

// fp16/bf16 checkpoints keep their weights as stored; linear widens them a panel of output rows at a
// time (here 256 rows of K = 4096, so 600 outputs take three panels, the last one partial).
TEST(Ops, LinearWithHalfPrecisionWeightsEqualsTheWidenedWeights) {
  const Tensor x = random_tensor({3, 4096}, 20), b = random_tensor({600}, 21);
  for (DType half : {DType::F16, DType::BF16}) {
    const Tensor w = random_tensor({600, 4096}, 22, 0.02f).to(half);
    const Tensor got = ops::linear(x, w, b), want = ops::linear(x, w.to(DType::F32), b);
    test::expect_close(std::string("linear with ") + dtype_name(half) + " weight", got, want, 1e-6);
  }
  EXPECT_THROW(ops::linear(x, Tensor::zeros({600, 4096}, DType::I64), Tensor()), Error);
}

// The packed GEMM behind linear(), each micro-kernel this CPU runs, against double-precision sums on odd
// shapes: row counts around the tile heights (1, mr−1, mr+1, several tasks), column counts off the panel
// width, K across the K-block boundary (384), F32/F16/BF16 weights, every epilogue part.
TEST(Ops, PackedGemmKernelsMatchTheReferenceOnOddShapes) {
  int kernels_run = 0;
  for (const char* name : {"avx512", "avx2"}) {
    const cpu::GemmKernel* kernel = cpu::gemm_kernel_named(name);
    if (!kernel) continue;  // this CPU lacks the ISA
    ++kernels_run;
    uint32_t seed = 100;
    for (int64_t m : {int64_t(1), int64_t(kernel->mr - 1), int64_t(kernel->mr + 1), int64_t(57), int64_t(301)})
      for (int64_t n : {int64_t(1), int64_t(kernel->nr - 3), int64_t(kernel->nr + 5), int64_t(3 * kernel->nr + 17)})
        for (int64_t k : {1, 13, 385, 800})
          for (DType dtype : {DType::F32, DType::F16, DType::BF16}) {
            const Tensor a = random_tensor({m, k + 2}, seed++);  // lda = k + 2: strided rows
            const Tensor w = random_tensor({n, k}, seed++, 0.1f).to(dtype), wide = w.to(DType::F32);
            const Tensor bias = random_tensor({n}, seed++), residual = random_tensor({m, n}, seed++);
            std::vector<float> panels(static_cast<size_t>(cpu::packed_panel_floats(n, k, kernel->nr)));
            cpu::pack_weight_panels(w, kernel->nr, panels.data());
            const int64_t ldc = n + 3;
            for (int fused = 0; fused < 2; ++fused) {
              cpu::GemmEpilogue ep;
              if (fused) {
                ep.bias = bias.data<float>();
                ep.residual = residual.data<float>();
                ep.ld_residual = n;
                ep.act = ops::Activation::Relu;
              }
              std::vector<float> c(static_cast<size_t>(m * ldc), 7.f);
              cpu::gemm_packed(*kernel, m, n, k, a.data<float>(), k + 2, panels.data(), c.data(), ldc, ep);
              for (int64_t i = 0; i < m; ++i)
                for (int64_t j = 0; j < ldc; ++j) {
                  const float got = c[i * ldc + j];
                  if (j >= n) {
                    ASSERT_EQ(got, 7.f) << name << ": column " << j << " past n=" << n << " was written";
                    continue;
                  }
                  double want = 0;
                  for (int64_t p = 0; p < k; ++p) want += double(a.data<float>()[i * (k + 2) + p]) * wide.data<float>()[j * k + p];
                  if (fused) want = std::max(0.0, want + bias.data<float>()[j] + residual.data<float>()[i * n + j]);
                  ASSERT_NEAR(got, want, 2e-6 * std::sqrt(double(k)) * (1 + std::abs(want)))
                      << name << " m=" << m << " n=" << n << " k=" << k << " " << dtype_name(dtype) << " fused=" << fused
                      << " at " << i << "," << j;
                }
            }
          }
  }
  if (kernels_run == 0) GTEST_SKIP() << "no AVX2 or AVX-512 on this CPU: linear uses dnnl_sgemm";
}

// linear() with a weight packed at load, with its fusions, equals the unfused ops on the weight as stored.
TEST(Ops, LinearPackedAndFusedEqualsSeparateOps) {
  const Tensor x = random_tensor({5, 9, 70}, 30), w = random_tensor({45, 70}, 31, 0.2f), b = random_tensor({45}, 32);
  const Tensor residual = random_tensor({5, 9, 45}, 33);
  const ops::PackedWeight packed = ops::pack_linear_weight(w);
  for (ops::Activation act : {ops::Activation::Identity, ops::Activation::GeluErf, ops::Activation::QuickGelu}) {
    Tensor want = ops::linear(x, w, b);
    ops::add_(want, residual);
    ops::activation_(want, act);
    // From the packed form alone (the weight dropped, as Linear does), and from the weight packed per call.
    if (packed.defined()) test::expect_close("packed + fused", ops::linear(x, Tensor(), packed, b, {residual, act}), want, 0.0);
    test::expect_close("fused", ops::linear(x, w, ops::PackedWeight(), b, {residual, act}), want, 0.0);
  }
  EXPECT_THROW(ops::linear(x, w, ops::PackedWeight(), b, {random_tensor({5, 9, 44}, 1), ops::Activation::Identity}), Error);
}

// The FLOP count benchmarks read for the UNet and the VAE: 2 per multiply-add of each counted op.
TEST(Ops, CountsFlopsOfLinearConvAndAttention) {
  const Tensor x = random_tensor({3, 5, 8}, 40), w = random_tensor({6, 8}, 41);
  const Tensor image = random_tensor({2, 3, 7, 9}, 42), kernel = random_tensor({4, 3, 3, 3}, 43);
  ops::count_flops(true);
  ops::linear(x, w, Tensor());
  ops::conv2d(image, kernel, Tensor(), 1, 1);
  ops::attention(x, x, x, 2, Tensor(), false);
  const double counted = ops::counted_flops();
  ops::count_flops(false);
  ops::linear(x, w, Tensor());  // not counted once disabled
  EXPECT_EQ(counted, 2.0 * 15 * 6 * 8 + 2.0 * (2 * 4 * 7 * 9) * (3 * 3 * 3) + 4.0 * 3 * 5 * 5 * 8);
  EXPECT_EQ(ops::counted_flops(), counted);
}

TEST(Ops, AttentionMatchesReferenceWithMasks) {
  struct Case { int64_t b, tq, tk, heads, d; bool causal; };
  for (const Case c : {Case{2, 7, 7, 4, 8, false}, Case{3, 5, 5, 2, 3, true}, Case{1, 300, 300, 2, 16, false},
                       Case{2, 260, 260, 1, 8, true}, Case{2, 4, 9, 3, 5, false}}) {
    const Tensor q = random_tensor({c.b, c.tq, c.heads * c.d}, 20), k = random_tensor({c.b, c.tk, c.heads * c.d}, 21),
                 v = random_tensor({c.b, c.tk, c.heads * c.d}, 22);
    std::vector<int64_t> mask(static_cast<size_t>(c.b * c.tk), 1);
    for (int64_t j = c.tk / 2 + 1; j < c.tk; ++j) mask[static_cast<size_t>(j)] = 0;  // row 0 padded
    const Tensor key_mask = Tensor::from_vector(mask, {c.b, c.tk});
    const Tensor bias = random_tensor({c.b, c.heads, c.tq, c.tk}, 23);
    for (const Tensor* score_bias : {static_cast<const Tensor*>(nullptr), &bias}) {
      const Tensor none;
      const Tensor& sb = score_bias ? *score_bias : none;
      const Tensor got = ops::attention(q, k, v, c.heads, key_mask, c.causal, sb);
      Tensor want = Tensor::empty(got.shape());
      cpu::attention_ref(q, k, v, c.heads, key_mask, c.causal, sb, want);
      test::expect_close(str("attention b", c.b, " t", c.tq, "x", c.tk, c.causal ? " causal" : "", score_bias ? " bias" : ""),
                         got, want, 2e-6);
    }
  }
}

TEST(Ops, FullyMaskedRowIsUniformAsInTransformers) {
  std::vector<float> row = {1.f, 5.f, -2.f};
  const uint8_t keep[] = {0, 0, 0};
  cpu::softmax_row_masked(row.data(), keep, 3);
  for (float p : row) EXPECT_FLOAT_EQ(p, 1.f / 3);
}

TEST(Ops, LayerNormSoftmaxActivations) {
  const Tensor x = random_tensor({3, 10}, 30, 3.f), w = random_tensor({10}, 31), b = random_tensor({10}, 32);
  const Tensor y = ops::layer_norm(x, w, b, 1e-5f);
  for (int64_t r = 0; r < 3; ++r) {
    double mean = 0, var = 0;
    for (int i = 0; i < 10; ++i) mean += x.data<float>()[r * 10 + i] / 10.0;
    for (int i = 0; i < 10; ++i) var += std::pow(x.data<float>()[r * 10 + i] - mean, 2) / 10.0;
    for (int i = 0; i < 10; ++i)
      EXPECT_NEAR(y.data<float>()[r * 10 + i],
                  (x.data<float>()[r * 10 + i] - mean) / std::sqrt(var + 1e-5) * w.data<float>()[i] + b.data<float>()[i], 2e-6);
  }
  Tensor s = x.clone();
  ops::softmax_(s);
  double total = 0;
  for (int i = 0; i < 10; ++i) total += s.data<float>()[i];
  EXPECT_NEAR(total, 1.0, 1e-6);

  const float v = 0.7f;
  const std::pair<ops::Activation, double> expected[] = {
      {ops::Activation::GeluErf, 0.5 * v * (1 + std::erf(v / std::sqrt(2.0)))},
      {ops::Activation::GeluTanh, 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)))},
      {ops::Activation::QuickGelu, v / (1 + std::exp(-1.702 * v))},
      {ops::Activation::Silu, v / (1 + std::exp(-v))},
      {ops::Activation::Relu, v},
      {ops::Activation::Tanh, std::tanh(v)}};
  for (auto [act, want] : expected) {
    Tensor t = Tensor::from_vector(std::vector<float>{v}, {1});
    ops::activation_(t, act);
    EXPECT_NEAR(t.data<float>()[0], want, 1e-6) << static_cast<int>(act);
  }
  EXPECT_EQ(ops::activation_from_name("gelu"), ops::Activation::GeluErf);
  EXPECT_THROW(ops::activation_from_name("gelu_banana"), Error);
}

TEST(Ops, EmbeddingRejectsOutOfRangeIds) {
  const Tensor table = random_tensor({5, 3}, 40);
  EXPECT_THROW(ops::embedding(table, Tensor::from_vector(std::vector<int64_t>{0, 5}, {2})), Error);
  const Tensor rows = ops::embedding(table, Tensor::from_vector(std::vector<int64_t>{4, 0}, {1, 2}));
  EXPECT_EQ(shape_str(rows.shape()), "[1, 2, 3]");
  EXPECT_EQ(rows.data<float>()[0], table.data<float>()[12]);
}

TEST(Ops, GeluVectorPathMatchesExactErf) {
  // 4099 values over [-12, 12] (vector body and scalar tail), against GELU with the exact erf in double:
  // the Abramowitz & Stegun erf is within 1.5e-7, so GELU is within 0.75e-7·|x| plus rounding.
  const int64_t n = 4099;
  Tensor x = Tensor::empty({n});
  for (int64_t i = 0; i < n; ++i) x.data<float>()[i] = -12.f + 24.f * static_cast<float>(i) / (n - 1);
  const Tensor input = x.clone();
  ops::activation_(x, ops::Activation::GeluErf);
  double worst = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double v = input.data<float>()[i], want = 0.5 * v * (1 + std::erf(v / std::sqrt(2.0)));
    const double err = std::fabs(x.data<float>()[i] - want);
    worst = std::max(worst, err / std::max(1.0, std::fabs(v)));
    ASSERT_LE(err, 2e-7 * std::max(1.0, std::fabs(v))) << "x = " << v;
  }
  std::printf("  gelu vs exact erf: max |d|/max(1,|x|) = %.3e\n", worst);
  // Each vector path this CPU has gives the same bits as the AVX2 one (the same arithmetic, wider).
  if (cpu_features().avx2 && cpu_features().fma) {
    Tensor narrow = input.clone();
    cpu::gelu_erf_span_avx2(narrow.data<float>(), n);
    test::expect_close("gelu AVX2 path vs the dispatched one", narrow, x, 0.0);
    if (cpu_features().avx512f) {
      Tensor wide = input.clone();
      cpu::gelu_erf_span_avx512(wide.data<float>(), n);
      test::expect_close("gelu AVX-512 path vs AVX2", wide, narrow, 0.0);
    }
  }
}

TEST(Ops, SiluAndQuickGeluMatchDoublePrecision) {
  // x·σ(k·x) over [-100, 100] (both tails, vector body and scalar tail) against double: the vector exp is
  // within ~5 ulp at large arguments, so each result is within 1e-6 relative of x·σ; below −88/k the exponent is clamped at
  // 88, which leaves |result| < 1e-36 where float math gives a denormal (the absolute floor below).
  const int64_t n = 8195;
  for (const auto& [act, k] : {std::pair{ops::Activation::Silu, 1.0}, std::pair{ops::Activation::QuickGelu, 1.702}}) {
    Tensor x = Tensor::empty({n});
    for (int64_t i = 0; i < n; ++i) x.data<float>()[i] = -100.f + 200.f * static_cast<float>(i) / (n - 1);
    const Tensor input = x.clone();
    ops::activation_(x, act);
    double worst = 0;
    for (int64_t i = 0; i < n; ++i) {
      // The reference rounds k·x to float first, as torch's `input * sigmoid(1.702 * input)` does.
      const float kx = static_cast<float>(k) * input.data<float>()[i];
      const double v = input.data<float>()[i], want = v / (1 + std::exp(-static_cast<double>(kx)));
      const double err = std::fabs(x.data<float>()[i] - want), bound = 1e-6 * std::fabs(want) + 1e-36;
      worst = std::max(worst, err / std::max(1e-30, std::fabs(want)));
      ASSERT_LE(err, bound) << "k = " << k << ", x = " << v << ": got " << x.data<float>()[i] << ", want " << want;
    }
    std::printf("  x·sigmoid(%.3f x) vs double: max relative error %.3e\n", k, worst);
  }
}

TEST(Ops, MaskedSoftmaxRowsMatchDoublePrecision) {
  // Rows of 1…70 entries (vector body and tail), scores up to ±30, every third key hidden.
  std::mt19937 rng(77);
  std::uniform_real_distribution<float> dist(-30.f, 30.f);
  for (int64_t n = 1; n <= 70; ++n) {
    std::vector<float> row(static_cast<size_t>(n));
    std::vector<uint8_t> keep(static_cast<size_t>(n));
    for (int64_t j = 0; j < n; ++j) {
      row[j] = dist(rng);
      keep[j] = (j % 3 != 1) ? 1 : 0;
    }
    const std::vector<float> input = row;
    cpu::softmax_row_masked(row.data(), keep.data(), n);
    double max = -1e300, sum = 0;
    for (int64_t j = 0; j < n; ++j)
      if (keep[j]) max = std::max(max, double(input[j]));
    for (int64_t j = 0; j < n; ++j)
      if (keep[j]) sum += std::exp(double(input[j]) - max);
    for (int64_t j = 0; j < n; ++j) {
      const double want = keep[j] ? std::exp(double(input[j]) - max) / sum : 0.0;
      ASSERT_NEAR(row[j], want, 1e-7 + 1e-6 * want) << "n=" << n << " j=" << j;
    }
  }
}

namespace {
// nn.Conv2d by its definition, in double.
Tensor conv2d_reference(const Tensor& x, const Tensor& w, const Tensor& bias, int64_t stride, int64_t pad) {
  const int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), wd = x.dim(3), o = w.dim(0), kh = w.dim(2), kw = w.dim(3);
  const int64_t ho = (h + 2 * pad - kh) / stride + 1, wo = (wd + 2 * pad - kw) / stride + 1;
  Tensor y = Tensor::empty({n, o, ho, wo});
  const float *xp = x.data<float>(), *wp = w.data<float>();
  for (int64_t b = 0; b < n; ++b)
    for (int64_t oc = 0; oc < o; ++oc)
      for (int64_t i = 0; i < ho; ++i)
        for (int64_t j = 0; j < wo; ++j) {
          double s = bias.defined() ? bias.data<float>()[oc] : 0.0;
          for (int64_t ci = 0; ci < c; ++ci)
            for (int64_t dy = 0; dy < kh; ++dy)
              for (int64_t dx = 0; dx < kw; ++dx) {
                const int64_t iy = i * stride - pad + dy, ix = j * stride - pad + dx;
                if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
                s += double(xp[((b * c + ci) * h + iy) * wd + ix]) * wp[((oc * c + ci) * kh + dy) * kw + dx];
              }
          y.data<float>()[((b * o + oc) * ho + i) * wo + j] = static_cast<float>(s);
        }
  return y;
}
}  // namespace

TEST(Ops, Conv2dMatchesItsDefinition) {
  struct Case {
    Shape x, w;
    int64_t stride, pad;
    bool bias;
  };
  const Case cases[] = {
      {{2, 3, 9, 7}, {5, 3, 3, 3}, 1, 1, true},     // the VAE/UNet 3×3 convolution
      {{1, 4, 8, 8}, {6, 4, 3, 3}, 2, 1, true},     // Downsample2D: stride 2, padding 1
      {{2, 8, 5, 6}, {3, 8, 1, 1}, 1, 0, false},    // 1×1 shortcut / quant conv, no bias
      {{1, 2, 4, 5}, {3, 2, 2, 3}, 1, 0, true},     // rectangular kernel
      {{1, 64, 130, 130}, {4, 64, 3, 3}, 1, 1, true},  // more than one im2col tile (576 × 130 × 130 floats)
      {{2, 5, 11, 70}, {33, 5, 3, 3}, 1, 1, true},   // rows wider than a panel, 33 output channels (3 row tiles)
      {{1, 3, 10, 10}, {7, 3, 3, 3}, 2, 0, true},    // stride 2 without padding (after pad_bottom_right)
      {{1, 2, 1, 1}, {3, 2, 1, 1}, 1, 0, true},      // one pixel: a panel of one column
  };
  uint32_t seed = 1;
  for (const auto& c : cases) {
    const Tensor x = random_tensor(c.x, seed++), w = random_tensor(c.w, seed++, 0.2f);
    const Tensor b = c.bias ? random_tensor({c.w[0]}, seed++) : Tensor();
    const Tensor got = ops::conv2d(x, w, b, c.stride, c.pad);
    const int64_t k = c.w[1] * c.w[2] * c.w[3];
    test::expect_close("conv2d " + shape_str(c.x) + " * " + shape_str(c.w), got, conv2d_reference(x, w, b, c.stride, c.pad),
                       2e-6 * (k + 1) * std::sqrt(double(k)));
  }
  const Tensor x = random_tensor({1, 6, 9, 9}, 30), w16 = random_tensor({4, 6, 3, 3}, 31, 0.2f).to(DType::F16);
  test::expect_close("conv2d with an F16 weight", ops::conv2d(x, w16, Tensor(), 2, 1),
                     ops::conv2d(x, w16.to(DType::F32), Tensor(), 2, 1), 1e-6);
  EXPECT_THROW(ops::conv2d(random_tensor({1, 3, 4, 4}, 1), random_tensor({2, 4, 3, 3}, 2), Tensor()), Error);
  EXPECT_THROW(ops::conv2d(random_tensor({1, 3, 2, 2}, 1), random_tensor({2, 3, 3, 3}, 2), Tensor()), Error);
}

TEST(Ops, GroupNormMatchesDoublePrecisionAndUpsampleRepeats) {
  const Tensor x = random_tensor({2, 8, 5, 3}, 7, 3.0f), w = random_tensor({8}, 8), b = random_tensor({8}, 9);
  const Tensor y = ops::group_norm(x, 4, w, b, 1e-6f);
  Tensor ref = Tensor::empty(x.shape());
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t g = 0; g < 4; ++g) {
      double mean = 0, var = 0;
      const int64_t count = 2 * 15;
      for (int64_t i = 0; i < count; ++i) mean += x.data<float>()[(n * 8 + g * 2) * 15 + i];
      mean /= count;
      for (int64_t i = 0; i < count; ++i) var += std::pow(x.data<float>()[(n * 8 + g * 2) * 15 + i] - mean, 2);
      var /= count;
      for (int64_t i = 0; i < count; ++i) {
        const int64_t ch = g * 2 + i / 15, at = (n * 8 + g * 2) * 15 + i;
        ref.data<float>()[at] = static_cast<float>((x.data<float>()[at] - mean) / std::sqrt(var + 1e-6) *
                                                       w.data<float>()[ch] + b.data<float>()[ch]);
      }
    }
  test::expect_close("group_norm", y, ref, 2e-6);
  EXPECT_THROW(ops::group_norm(x, 3, w, b, 1e-6f), Error);  // 8 channels do not split into 3 groups
  // GroupNorm with SiLU fused (every ResNet block) equals the two ops, bit for bit.
  Tensor separate = ops::group_norm(x, 4, w, b, 1e-6f);
  ops::activation_(separate, ops::Activation::Silu);
  test::expect_close("group_norm + silu fused", ops::group_norm(x, 4, w, b, 1e-6f, ops::Activation::Silu), separate, 0.0);

  const Tensor small = random_tensor({1, 2, 2, 3}, 10);
  const Tensor up = ops::upsample_nearest2x(small);
  ASSERT_EQ(up.shape(), (Shape{1, 2, 4, 6}));
  for (int64_t p = 0; p < 2; ++p)
    for (int64_t i = 0; i < 4; ++i)
      for (int64_t j = 0; j < 6; ++j)
        EXPECT_EQ(up.data<float>()[(p * 4 + i) * 6 + j], small.data<float>()[(p * 2 + i / 2) * 3 + j / 2]);
}
