#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "core/half.hpp"
#include "test_util.hpp"

using namespace mmx;

TEST(Tensor, ShapeReshapeNarrow) {
  Tensor t = Tensor::from_vector(std::vector<float>{0, 1, 2, 3, 4, 5}, {3, 2});
  EXPECT_EQ(t.numel(), 6);
  EXPECT_EQ(t.dim(-1), 2);
  EXPECT_EQ(shape_str(t.reshape({-1}).shape()), "[6]");
  Tensor rows = t.narrow0(1, 2);
  EXPECT_EQ(rows.data<float>()[0], 2.f);
  EXPECT_EQ(rows.data<float>()[3], 5.f);
  EXPECT_THROW(t.reshape({4, 2}), Error);
  EXPECT_THROW(t.narrow0(2, 2), Error);
  EXPECT_THROW(t.data<int64_t>(), Error);
}

TEST(Tensor, F16RoundTripIsExactForEveryHalfValue) {
  // Every one of the 65536 f16 bit patterns converts to f32 and back unchanged (NaNs stay NaN).
  std::vector<uint16_t> bits(65536);
  for (uint32_t i = 0; i < 65536; ++i) bits[i] = static_cast<uint16_t>(i);
  std::vector<float> wide(65536);
  f16_to_f32(bits.data(), wide.data(), bits.size());  // vector path
  for (uint32_t i = 0; i < 65536; ++i) {
    ASSERT_EQ(std::isnan(wide[i]), std::isnan(f16_to_f32(static_cast<uint16_t>(i)))) << i;
    if (std::isnan(wide[i])) continue;
    ASSERT_EQ(wide[i], f16_to_f32(static_cast<uint16_t>(i))) << "scalar and F16C paths differ at " << i;
    ASSERT_EQ(f32_to_f16(wide[i]), i) << "bits " << i;
  }
}

TEST(Tensor, F32ToF16RoundsToNearestEven) {
  EXPECT_EQ(f32_to_f16(1.0f), 0x3c00);
  EXPECT_EQ(f32_to_f16(65504.f), 0x7bff);
  EXPECT_EQ(f32_to_f16(65520.f), 0x7c00);                     // halfway to 65536 rounds to even: inf
  EXPECT_EQ(f32_to_f16(1.0f + 1.0f / 2048), 0x3c00);          // tie, even stays
  EXPECT_EQ(f32_to_f16(1.0f + 3.0f / 2048), 0x3c02);          // tie, odd rounds up
  EXPECT_EQ(f32_to_f16(std::ldexp(1.f, -24)), 0x0001);        // smallest subnormal
  EXPECT_EQ(f32_to_f16(std::ldexp(1.f, -25)), 0x0000);        // tie to even (zero)
  EXPECT_EQ(f32_to_f16(std::ldexp(3.f, -26)), 0x0001);
}

// The vectorised F32 → F16 conversion against the scalar one on every kind of float: random bit patterns
// (normals, subnormals, overflow, NaNs with payloads) and values near every rounding boundary.
TEST(Tensor, VectorF32ToF16EqualsScalarOnEveryKindOfFloat) {
  std::mt19937 rng(5);
  std::vector<float> values;
  for (int i = 0; i < 200000; ++i) {
    uint32_t bits = rng();
    float f;
    std::memcpy(&f, &bits, 4);
    values.push_back(f);
    values.push_back(std::ldexp(static_cast<float>(rng() % 4096) / 4096.0f + 1.0f, static_cast<int>(rng() % 48) - 30));
  }
  values.push_back(std::numeric_limits<float>::quiet_NaN());
  values.push_back(-std::numeric_limits<float>::infinity());
  std::vector<uint16_t> fast(values.size());
  f32_to_f16(values.data(), fast.data(), values.size());
  for (size_t i = 0; i < values.size(); ++i)
    ASSERT_EQ(fast[i], f32_to_f16(values[i])) << "value " << values[i] << " at " << i;
}

TEST(Tensor, Bf16Conversion) {
  EXPECT_EQ(bf16_to_f32(0x3f80), 1.0f);
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  Tensor t = Tensor::from_vector(std::vector<float>{1.5f, -2.f, 0.f}, {3}).to(DType::BF16).to(DType::F32);
  EXPECT_EQ(t.data<float>()[0], 1.5f);
  EXPECT_EQ(t.data<float>()[1], -2.f);
  // The bulk conversion (vectorised) rounds every value as the scalar one: halfway cases both ways,
  // denormals, the largest finite values (rounding up to infinity), infinities and NaNs.
  std::vector<float> values;
  std::mt19937 rng(11);
  for (int i = 0; i < 4000; ++i) {
    uint32_t bits = rng();
    if (i % 4 == 0) bits = (bits & 0xffff0000u) | 0x8000u;  // exactly halfway
    float f;
    std::memcpy(&f, &bits, 4);
    values.push_back(f);
  }
  for (float f : {std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::infinity(),
                  std::numeric_limits<float>::max(), std::numeric_limits<float>::denorm_min(), -0.f})
    values.push_back(f);
  std::vector<uint16_t> fast(values.size());
  f32_to_bf16(values.data(), fast.data(), values.size());
  for (size_t i = 0; i < values.size(); ++i)
    ASSERT_EQ(fast[i], f32_to_bf16(values[i])) << "value " << values[i] << " at " << i;
  // F16 → BF16 (a bf16 placement of an fp16 checkpoint): widened exactly, then rounded once.
  const Tensor f16 = Tensor::from_vector(std::vector<float>{1.0009765625f, -3.14159f, 65504.f, 6e-8f}, {4}).to(DType::F16);
  const Tensor bf16 = f16.to(DType::BF16);
  for (int64_t i = 0; i < 4; ++i)
    EXPECT_EQ(static_cast<const uint16_t*>(bf16.raw())[i], f32_to_bf16(f16.to(DType::F32).data<float>()[i])) << i;
}

// Large activation blocks are reused: the same size exactly, or a cached block of up to twice the size;
// a miss on a larger size returns the smaller cached blocks to the system (VAE stages grow 4× each).
TEST(Tensor, LargeBlocksAreReusedUpToTwiceTheSize) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "the block cache is off under AddressSanitizer";
#else
  const void* first = nullptr;
  {
    const Tensor a = Tensor::empty({3 << 20});  // 12 MiB, freed into the cache
    first = a.raw();
  }
  {
    const Tensor same = Tensor::empty({3 << 20});
    EXPECT_EQ(same.raw(), first) << "an exact-size block is reused";
  }
  {
    const Tensor smaller = Tensor::empty({2 << 20});  // 8 MiB: the 12 MiB block serves (≤ 2×)
    EXPECT_EQ(smaller.raw(), first);
  }
  {
    const Tensor much_smaller = Tensor::empty({1 << 20});  // 4 MiB: a 12 MiB block would waste too much
    EXPECT_NE(much_smaller.raw(), first);
  }
  // Writing through a reused block of a larger size is safe (ASan would catch an overrun in the asan preset).
  Tensor reused = Tensor::empty({2 << 20});
  std::fill(reused.data<float>(), reused.data<float>() + reused.numel(), 1.f);
  EXPECT_EQ(reused.data<float>()[reused.numel() - 1], 1.f);
#endif
}
