// The layout ops (what models call instead of touching elements) against their definitions.
#include <random>

#include "backend/ops.hpp"
#include "test_util.hpp"

using namespace mmx;

namespace {

Tensor iota(Shape shape) {  // 0, 1, 2, ... so every misplaced element shows
  Tensor t = Tensor::empty(std::move(shape));
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = float(i);
  return t;
}

}  // namespace

TEST(LayoutOps, Transpose12SwapsTheLastTwoDimensions) {
  for (auto [n, a, b] : {std::tuple<int64_t, int64_t, int64_t>{2, 3, 5}, {1, 40, 33}, {3, 64, 1}}) {
    const Tensor x = iota({n, a, b}), y = ops::transpose12(x);
    ASSERT_EQ(y.shape(), (Shape{n, b, a}));
    for (int64_t s = 0; s < n; ++s)
      for (int64_t i = 0; i < a; ++i)
        for (int64_t j = 0; j < b; ++j)
          ASSERT_EQ(y.data<float>()[(s * b + j) * a + i], x.data<float>()[(s * a + i) * b + j]);
    test::expect_close("transpose twice", ops::transpose12(y), x, 0.0);
  }
}

TEST(LayoutOps, Concat1JoinsAlongDimensionOneAndRepeatsABatchOfOne) {
  const Tensor a = iota({2, 3, 4}), b = iota({2, 5, 4});
  const Tensor y = ops::concat1(a, b);
  ASSERT_EQ(y.shape(), (Shape{2, 8, 4}));
  for (int64_t s = 0; s < 2; ++s)
    for (int64_t r = 0; r < 8; ++r)
      for (int64_t c = 0; c < 4; ++c)
        ASSERT_EQ(y.data<float>()[(s * 8 + r) * 4 + c],
                  r < 3 ? a.data<float>()[(s * 3 + r) * 4 + c] : b.data<float>()[(s * 5 + r - 3) * 4 + c]);
  const Tensor cls = iota({1, 1, 4}), z = ops::concat1(cls, b);
  for (int64_t s = 0; s < 2; ++s)
    for (int64_t c = 0; c < 4; ++c) ASSERT_EQ(z.data<float>()[s * 6 * 4 + c], float(c));
  EXPECT_THROW(ops::concat1(iota({2, 3, 4}), iota({2, 3, 5})), Error);
  EXPECT_THROW(ops::concat1(iota({3, 3, 4}), iota({2, 3, 4})), Error);
}

TEST(LayoutOps, GegluMultipliesTheFirstHalfByGeluOfTheSecond) {
  std::mt19937 rng(3);
  std::normal_distribution<float> dist(0.f, 2.f);
  Tensor x = Tensor::empty({3, 2, 2 * 37});
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = dist(rng);
  const Tensor y = ops::geglu(x);
  ASSERT_EQ(y.shape(), (Shape{3, 2, 37}));
  double worst = 0;
  for (int64_t r = 0; r < 6; ++r)
    for (int64_t i = 0; i < 37; ++i) {
      const double h = x.data<float>()[r * 74 + i], g = x.data<float>()[r * 74 + 37 + i];
      const double expected = h * 0.5 * g * (1 + std::erf(g / std::sqrt(2.0)));
      worst = std::max(worst, std::fabs(y.data<float>()[r * 37 + i] - expected) / std::max(1.0, std::fabs(expected)));
    }
  EXPECT_LE(worst, 1e-6);
  EXPECT_THROW(ops::geglu(iota({2, 3})), Error);
}

TEST(LayoutOps, SelectTokensPicksOneRowPerSample) {
  const Tensor x = iota({3, 4, 5});
  const Tensor y = ops::select_tokens(x, {0, 3, 2});
  ASSERT_EQ(y.shape(), (Shape{3, 5}));
  const int64_t rows[] = {0, 3, 2};
  for (int64_t b = 0; b < 3; ++b)
    for (int64_t c = 0; c < 5; ++c) ASSERT_EQ(y.data<float>()[b * 5 + c], x.data<float>()[(b * 4 + rows[b]) * 5 + c]);
  EXPECT_THROW(ops::select_tokens(x, {0, 4, 0}), Error);
  EXPECT_THROW(ops::select_tokens(x, {0, 1}), Error);
}

TEST(LayoutOps, PatchifyOrdersFeaturesLikeTheConvolutionWeight) {
  // 2 images, 3 channels, 6×9 pixels, 3×2 patches (rectangular, and 9 % 2 leaves a column out).
  const Tensor x = iota({2, 3, 6, 9});
  const Tensor y = ops::patchify(x, 3, 2);
  ASSERT_EQ(y.shape(), (Shape{2, 2 * 4, 3 * 3 * 2}));
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t p = 0; p < 8; ++p)
      for (int64_t ch = 0; ch < 3; ++ch)
        for (int64_t r = 0; r < 3; ++r)
          for (int64_t q = 0; q < 2; ++q)
            ASSERT_EQ(y.data<float>()[(b * 8 + p) * 18 + (ch * 3 + r) * 2 + q],
                      x.data<float>()[((b * 3 + ch) * 6 + (p / 4) * 3 + r) * 9 + (p % 4) * 2 + q]);
}

TEST(LayoutOps, AddChannelBiasShiftsEachPlane) {
  Tensor x = iota({2, 3, 2, 2});
  const Tensor v = iota({2, 3});
  ops::add_channel_bias_(x, v);
  for (int64_t i = 0; i < x.numel(); ++i) ASSERT_EQ(x.data<float>()[i], float(i) + float(i / 4));
  Tensor z = iota({2, 3, 2, 2});
  EXPECT_THROW(ops::add_channel_bias_(z, iota({3})), Error);
}
