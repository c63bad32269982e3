// torch.randn(shape, generator=torch.Generator().manual_seed(s)) reproduced bit for bit
// (rng/torch_randn.safetensors: seeds 0, 42, 1234; both samplers, the 16-value blocks and the recomputed tail).
#include <cstring>

#include "mmx/torch_random.hpp"
#include "test_util.hpp"

using namespace mmx;

TEST(TorchRandom, RandnEqualsTorchBitForBit) {
  const auto expected = SafetensorsFile::open(test::data("rng/torch_randn.safetensors"));
  int checked = 0;
  for (uint64_t seed : {0, 42, 1234})
    for (const char* shape : {"4", "16", "17", "100", "1x4x32x32", "2x4x64x64"}) {
      const std::string key = "seed" + std::to_string(seed) + "_" + shape;
      const Tensor want = expected.get(key);
      const Tensor got = TorchGenerator(seed).randn(want.shape());
      ASSERT_EQ(got.shape(), want.shape()) << key;
      int64_t differing = 0;
      for (int64_t i = 0; i < want.numel(); ++i)
        differing += std::memcmp(got.data<float>() + i, want.data<float>() + i, 4) != 0;
      EXPECT_EQ(differing, 0) << key << ": " << differing << " of " << want.numel() << " values differ";
      ++checked;
    }
  EXPECT_EQ(checked, 18);
  const auto latents = SafetensorsFile::open(test::data("expected/sdxl-tiny.safetensors")).get("init_latents_randn");
  test::expect_close("seed 0 = SDXL's initial latents", TorchGenerator(0).randn({1, 4, 32, 32}), latents, 0);
}

TEST(TorchRandom, SmallCallsShareTheCachedSecondValue) {
  // Below 16 values each call continues Box–Muller: randn(3) then randn(1) equals randn(4).
  TorchGenerator a(7), b(7);
  const Tensor three = a.randn({3}), one = a.randn({1}), four = b.randn({4});
  for (int i = 0; i < 3; ++i) EXPECT_EQ(three.data<float>()[i], four.data<float>()[i]);
  EXPECT_EQ(one.data<float>()[0], four.data<float>()[3]);
}
