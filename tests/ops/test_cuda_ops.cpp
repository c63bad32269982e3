// The CUDA backend against the CPU backend, op by op, in f32, f16 and bf16. Skipped where no CUDA
// device is visible (CI); scripts/gpu-check.sh runs them on a GPU machine.
//
// Half-precision runs feed both backends the same rounded inputs (the CPU computes on the f16/bf16
// values widened to f32), so what differs is the GPU's own rounding: results stored in the half format
// (relative 2⁻¹¹ for f16, 2⁻⁸ for bf16, up to twice where an epilogue rounds again) and the order of
// f32 sums. The bounds below are those roundings with a factor 4 of headroom, relative to the largest
// expected magnitude; f32 allows the reordering of f32 sums alone.
#include <random>

#include "backend/ops.hpp"
#include "io/checkpoint.hpp"
#include "mmx/runtime.hpp"
#include "io/diffusers_folder.hpp"
#include "models/unet2d_condition.hpp"
#include "pipelines/step_runner.hpp"
#include "pipelines/torch_device_random.hpp"
#include "test_util.hpp"

using namespace mmx;

namespace {

#define SKIP_WITHOUT_CUDA() \
  if (!test::cuda_device()) GTEST_SKIP() << "no CUDA device visible"

Device gpu() { return *test::cuda_device(); }

using test::random_tensor;

const DType kDtypes[] = {DType::F32, DType::F16, DType::BF16};

// The value a CUDA op of `dtype` is given: x rounded to dtype (host view, F32).
Tensor rounded(const Tensor& x, DType dtype) { return x.to(dtype).to(DType::F32); }
Tensor on_device(const Tensor& x, DType dtype) { return x.to(gpu()).to(dtype); }
Tensor on_host(const Tensor& x) { return x.to(DType::F32).to(Device::cpu()); }

double unit_roundoff(DType dtype) {
  return dtype == DType::F16 ? 1.0 / 2048 : dtype == DType::BF16 ? 1.0 / 256 : 0.0;
}

double max_abs(const Tensor& t) {
  double m = 0;
  for (int64_t i = 0; i < t.numel(); ++i) m = std::max(m, double(std::fabs(t.data<float>()[i])));
  return m;
}

// f32: sums reordered (terms × 2⁻²⁴ each, bounded generously by 1e-5 relative); half: 4 × two roundings.
void expect_matches(const std::string& name, const Tensor& got_device, const Tensor& expected, DType dtype,
                    double f32_relative = 1e-5) {
  const Tensor got = on_host(got_device);
  const double scale = std::max(1.0, max_abs(expected));
  const double bound = dtype == DType::F32 ? f32_relative * scale : 8 * unit_roundoff(dtype) * scale;
  test::expect_close(str(name, " (", dtype_name(dtype), ")"), got, expected, bound);
}

}  // namespace

TEST(CudaTensor, CopiesAndConversionsAreExact) {
  SKIP_WITHOUT_CUDA();
  const Tensor x = random_tensor({3, 1000}, 1, 10.f);
  test::expect_close("host → device → host", x.to(gpu()).to(Device::cpu()), x, 0.0);
  for (DType d : {DType::F16, DType::BF16}) {
    // Round to nearest even on both sides: the device conversion must equal the host's bit for bit.
    test::expect_close(str("f32 → ", dtype_name(d), " on the device"), x.to(gpu()).to(d).to(Device::cpu()).to(DType::F32),
                       x.to(d).to(DType::F32), 0.0);
  }
  const Tensor big = random_tensor({40 << 20 >> 2}, 2);  // 40 MiB: the pinned, chunked upload path
  test::expect_close("40 MiB upload", big.to(gpu()).to(Device::cpu()), big, 0.0);
  const Tensor zeros = Tensor::zeros({5, 7}, DType::F32, gpu()).to(Device::cpu());
  EXPECT_EQ(max_abs(zeros), 0.0);
  EXPECT_EQ(x.to(gpu()).clone().to(Device::cpu()).numel(), x.numel());
}

TEST(CudaTensor, HostAccessAndMixedDevicesAreErrors) {
  SKIP_WITHOUT_CUDA();
  Tensor d = Tensor::zeros({4}, DType::F32, gpu());
  EXPECT_THROW(d.data<float>(), Error);
  EXPECT_THROW(ops::add_(d, Tensor::zeros({4})), Error);
  EXPECT_THROW(ops::linear(Tensor::zeros({2, 4}, DType::F32, gpu()), Tensor::zeros({3, 4}), Tensor()), Error);
  EXPECT_THROW(ops::linear(Tensor::zeros({2, 4}, DType::F16, gpu()), Tensor::zeros({3, 4}, DType::F32, gpu()),
                           Tensor()),
               Error);  // the weight must be in the activations' dtype on CUDA
}

TEST(CudaTensor, FreedBlocksAreReused) {
  SKIP_WITHOUT_CUDA();
  const void* first = nullptr;
  {
    const Tensor t = Tensor::empty({3 << 20}, DType::F32, gpu());
    first = t.raw();
  }
  const Tensor again = Tensor::empty({3 << 20}, DType::F32, gpu());
  EXPECT_EQ(again.raw(), first);
}

TEST(CudaOps, LinearWithBiasResidualAndEveryActivation) {
  SKIP_WITHOUT_CUDA();
  const ops::Activation acts[] = {ops::Activation::Identity, ops::Activation::GeluErf, ops::Activation::GeluTanh,
                                  ops::Activation::QuickGelu, ops::Activation::Relu,   ops::Activation::Silu,
                                  ops::Activation::Tanh,     ops::Activation::Sigmoid};
  for (DType dtype : kDtypes) {
    const Tensor x = rounded(random_tensor({2, 37, 70}, 3), dtype), w = rounded(random_tensor({45, 70}, 4, 0.1f), dtype);
    const Tensor b = random_tensor({45}, 5), res = rounded(random_tensor({2, 37, 45}, 6), dtype);
    for (ops::Activation act : acts) {
      const Tensor expected = ops::linear(x, w, ops::PackedWeight(), b, {res, act});
      const Tensor got = ops::linear(on_device(x, dtype), on_device(w, dtype), ops::PackedWeight(), b.to(gpu()),
                                     {on_device(res, dtype), act});
      expect_matches(str("linear act ", int(act)), got, expected, dtype);
    }
    const Tensor plain = ops::linear(on_device(x, dtype), on_device(w, dtype), Tensor());
    expect_matches("linear without bias", plain, ops::linear(x, w, Tensor()), dtype);
  }
  // A BERT-base MLP shape: many tiles and a K of 768.
  const Tensor x = random_tensor({256, 768}, 7), w = random_tensor({3072, 768}, 8, 0.02f), b = random_tensor({3072}, 9);
  expect_matches("linear 256×3072×768", ops::linear(x.to(gpu()), w.to(gpu()), b.to(gpu())),
                 ops::linear(x, w, b), DType::F32);
}

TEST(CudaOps, NormsSoftmaxActivationsAndAdd) {
  SKIP_WITHOUT_CUDA();
  for (DType dtype : kDtypes) {
    const Tensor x = rounded(random_tensor({5, 300}, 10, 3.f), dtype);
    const Tensor w = random_tensor({300}, 11), b = random_tensor({300}, 12);
    expect_matches("layer_norm", ops::layer_norm(on_device(x, dtype), w.to(gpu()), b.to(gpu()), 1e-5f),
                   ops::layer_norm(x, w, b, 1e-5f), dtype);

    Tensor s = rounded(random_tensor({7, 1000}, 13, 4.f), dtype), sd = on_device(s, dtype);
    ops::softmax_(s);
    ops::softmax_(sd);
    expect_matches("softmax", sd, s, dtype);

    for (int a = 0; a <= int(ops::Activation::Identity); ++a) {
      Tensor h = rounded(random_tensor({4, 257}, 14, 3.f), dtype), hd = on_device(h, dtype);
      ops::activation_(h, ops::Activation(a));
      ops::activation_(hd, ops::Activation(a));
      expect_matches(str("activation ", a), hd, h, dtype);
    }

    Tensor sum = rounded(random_tensor({3, 4, 50}, 15), dtype), sumd = on_device(sum, dtype);
    const Tensor y = rounded(random_tensor({4, 50}, 16), dtype);
    ops::add_(sum, y);
    ops::add_(sumd, on_device(y, dtype));
    expect_matches("add broadcast", sumd, sum, dtype);

    const Tensor gx = rounded(random_tensor({2, 64, 9, 11}, 17, 2.f), dtype);
    const Tensor gw = random_tensor({64}, 18), gb = random_tensor({64}, 19);
    expect_matches("group_norm + silu",
                   ops::group_norm(on_device(gx, dtype), 32, gw.to(gpu()), gb.to(gpu()), 1e-6f,
                                   ops::Activation::Silu),
                   ops::group_norm(gx, 32, gw, gb, 1e-6f, ops::Activation::Silu), dtype);
  }
  // A VAE-sized group (4 channels of 256², several blocks' partial sums per group) with an offset mean.
  Tensor big = random_tensor({1, 128, 256, 256}, 20);
  for (int64_t i = 0; i < big.numel(); ++i) big.data<float>()[i] += 3.f;
  expect_matches("group_norm 128×256²", ops::group_norm(big.to(gpu()), 32, Tensor(), Tensor(), 1e-6f),
                 ops::group_norm(big, 32, Tensor(), Tensor(), 1e-6f), DType::F32);
}

TEST(CudaOps, EmbeddingGathersRows) {
  SKIP_WITHOUT_CUDA();
  const Tensor table = random_tensor({50, 16}, 21);
  const Tensor ids = Tensor::from_vector<int64_t>({0, 49, 3, 3, 17, 8, 1, 2, 40, 41, 42, 43, 44, 0}, {2, 7});
  for (DType dtype : kDtypes)
    expect_matches("embedding", ops::embedding(on_device(rounded(table, dtype), dtype), ids),
                   ops::embedding(rounded(table, dtype), ids), dtype, 0.0);
}

TEST(CudaOps, AttentionWithMasksCausalBiasAndEveryHeadWidth) {
  SKIP_WITHOUT_CUDA();
  struct Case {
    int64_t batch, tq, tk, heads, d;
    bool mask, causal, bias;
  };
  const Case cases[] = {{2, 37, 45, 3, 64, false, false, false},  // cross-attention, Tq ≠ Tk
                        {2, 40, 40, 2, 64, true, false, false},   // padding mask (and a fully hidden row)
                        {3, 77, 77, 4, 64, true, true, false},    // CLIP text: causal + padding
                        {2, 33, 33, 2, 80, false, false, true},   // 80-wide heads (ViT-H), a score bias
                        {1, 20, 70, 2, 160, false, false, false}, // the 256-wide kernel
                        {1, 5, 300, 1, 8, false, false, false},   // narrow heads, many key tiles
                        {2, 130, 200, 10, 64, false, false, false}};  // several query blocks and key tiles, partial
  uint32_t seed = 30;
  // F16/BF16 with 64-wide heads run on the tensor-core kernel; MMX_CUDA_ATTENTION=simple checks the other too.
  for (const char* kernel : {"default", "simple"})
  for (const Case& c : cases)
    for (DType dtype : kDtypes) {
      const test::EnvVar force("MMX_CUDA_ATTENTION", std::string(kernel) == "simple" ? std::optional<std::string>("simple")
                                                                                      : std::nullopt);
      const int64_t channels = c.heads * c.d;
      const Tensor q = rounded(random_tensor({c.batch, c.tq, channels}, seed++), dtype);
      const Tensor k = rounded(random_tensor({c.batch, c.tk, channels}, seed++), dtype);
      const Tensor v = rounded(random_tensor({c.batch, c.tk, channels}, seed++), dtype);
      Tensor mask;
      if (c.mask) {
        mask = Tensor::empty({c.batch, c.tk}, DType::I64);
        for (int64_t b = 0; b < c.batch; ++b)
          for (int64_t t = 0; t < c.tk; ++t) mask.data<int64_t>()[b * c.tk + t] = b == 1 ? 0 : t < c.tk - 3 * b - 2;
      }
      const Tensor bias = c.bias ? random_tensor({c.batch, c.heads, c.tq, c.tk}, seed++) : Tensor();
      const Tensor expected = ops::attention(q, k, v, c.heads, mask, c.causal, bias);
      const Tensor got = ops::attention(on_device(q, dtype), on_device(k, dtype), on_device(v, dtype), c.heads,
                                        mask.defined() ? mask.to(gpu()) : mask, c.causal,
                                        bias.defined() ? bias.to(gpu()) : bias);
      expect_matches(str("attention (", kernel, ") ", c.batch, "×", c.tq, "×", c.tk, " heads ", c.heads, "×", c.d), got,
                     expected, dtype);
    }
}

TEST(CudaOps, Conv2dStridesPaddingAndPointwise) {
  SKIP_WITHOUT_CUDA();
  struct Case {
    int64_t kernel, stride, padding;
    bool bias;
  };
  // cuDNN where the build has it, and the im2col + cuBLASLt path (MMX_CUDA_CONV=im2col).
  for (const char* path : {"default", "im2col"})
  for (const Case c : {Case{3, 1, 1, true}, Case{3, 2, 0, true}, Case{1, 1, 0, true}, Case{3, 1, 1, false}, Case{2, 2, 0, true}})
    for (DType dtype : kDtypes) {
      const test::EnvVar force("MMX_CUDA_CONV", std::string(path) == "im2col" ? std::optional<std::string>("im2col")
                                                                                : std::nullopt);
      const Tensor x = rounded(random_tensor({2, 5, 13, 11}, 40), dtype);
      const Tensor w = rounded(random_tensor({7, 5, c.kernel, c.kernel}, 41, 0.2f), dtype);
      const Tensor b = c.bias ? random_tensor({7}, 42) : Tensor();
      expect_matches(str("conv2d (", path, ") k", c.kernel, " s", c.stride, " p", c.padding),
                     ops::conv2d(on_device(x, dtype), on_device(w, dtype), b.defined() ? b.to(gpu()) : b, c.stride,
                                 c.padding),
                     ops::conv2d(x, w, b, c.stride, c.padding), dtype);
    }
}

TEST(CudaOps, LayoutOpsAndResampling) {
  SKIP_WITHOUT_CUDA();
  for (DType dtype : kDtypes) {
    const Tensor x = rounded(random_tensor({2, 3, 5, 7}, 50), dtype);
    expect_matches("upsample", ops::upsample_nearest2x(on_device(x, dtype)), ops::upsample_nearest2x(x), dtype, 0.0);
    expect_matches("pad", ops::pad_bottom_right(on_device(x, dtype), 1), ops::pad_bottom_right(x, 1), dtype, 0.0);
    const Tensor t = rounded(random_tensor({2, 70, 45}, 51), dtype);
    expect_matches("transpose12", ops::transpose12(on_device(t, dtype)), ops::transpose12(t), dtype, 0.0);
    const Tensor cls = rounded(random_tensor({1, 1, 45}, 52), dtype);
    expect_matches("concat1 (class token)", ops::concat1(on_device(cls, dtype), on_device(t, dtype)), ops::concat1(cls, t),
                   dtype, 0.0);
    expect_matches("concat1", ops::concat1(on_device(t, dtype), on_device(t, dtype)), ops::concat1(t, t), dtype, 0.0);
    expect_matches("geglu", ops::geglu(on_device(t.reshape({2, 35, 90}), dtype)), ops::geglu(t.reshape({2, 35, 90})), dtype);
    expect_matches("select_tokens", ops::select_tokens(on_device(t, dtype), {69, 0}), ops::select_tokens(t, {69, 0}), dtype,
                   0.0);
    const Tensor pixels = rounded(random_tensor({2, 3, 32, 32}, 53), dtype);
    expect_matches("patchify", ops::patchify(on_device(pixels, dtype), 8, 8), ops::patchify(pixels, 8, 8), dtype, 0.0);
    Tensor h = x.clone(), hd = on_device(x, dtype);
    const Tensor v = rounded(random_tensor({2, 3}, 54), dtype);
    ops::add_channel_bias_(h, v);
    ops::add_channel_bias_(hd, on_device(v, dtype));
    expect_matches("add_channel_bias", hd, h, dtype);
  }
}

// The UNet step recorded as a CUDA graph and replayed gives the eager step's numbers bit for bit (the
// same kernels on the same inputs), call after call with new inputs, and both match the CPU.
TEST(CudaGraphs, ReplayedUNetStepsEqualTheEagerOnes) {
  SKIP_WITHOUT_CUDA();
  const auto expected = SafetensorsFile::open(test::data("expected/sdxl-tiny.safetensors"));
  const std::string dir = test::data("models/sdxl-tiny/unet");
  const auto config = UNet2DConditionConfig::from_json(JsonObject::load(dir + "/config.json"));
  const Checkpoint checkpoint = Checkpoint::open(component_weights(dir, "diffusion_pytorch_model", ""));
  const Placement on_gpu{gpu(), DType::F32};
  const auto unet = load_model<UNet2DConditionModel>(config, checkpoint, on_gpu);
  const auto cpu = load_model<UNet2DConditionModel>(config, checkpoint, Placement());
  StepRunner runner(on_gpu);
  const Tensor samples = expected.get("unet_in_sample"), timesteps = expected.get("unet_in_timestep");
  const Tensor context = expected.get("unet_in_encoder_hidden_states"), text = expected.get("unet_in_text_embeds");
  const Tensor ids = expected.get("unet_in_time_ids");
  for (int64_t i = 0; i < 3; ++i) {  // call 1 eager, call 2 records and replays, call 3 replays
    const Tensor sample = samples.narrow0(i, 1).clone().reshape({samples.dim(1), samples.dim(2), samples.dim(3), samples.dim(4)});
    const float t = timesteps.data<float>()[i];
    const UNet2DConditionModel::Inputs in = unet.prepare(sample, t, context, text, ids);
    const Tensor replayed = runner.run({in.sample, in.time_features, in.add_features, in.context},
                                       [&](const std::vector<Tensor>& d) { return unet.forward({d[0], d[1], d[2], d[3]}); });
    const Tensor direct = unet.forward(sample, t, context, text, ids);  // eager, without the runner
    test::expect_close(str("graph vs eager, call ", i), replayed, direct, 0.0);
    test::expect_close(str("graph vs CPU, call ", i), replayed, cpu.forward(sample, t, context, text, ids), 1e-5);
  }
  EXPECT_EQ(runner.replays(), 2);  // calls 2 and 3
}

// torch.randn on a CUDA generator: MMX_TORCH_CUDA_RANDN names a safetensors file torch wrote on this GPU
// (scripts/gpu-check.sh makes it): keys "s{seed}_{f32|f16|bf16}_{d0}x{d1}..." hold a first draw of a
// fresh generator, a "_second" suffix the next draw of the same generator. Bit for bit.
TEST(CudaRandom, TorchCudaRandnBitForBit) {
  SKIP_WITHOUT_CUDA();
  const char* path = std::getenv("MMX_TORCH_CUDA_RANDN");
  if (!path) GTEST_SKIP() << "MMX_TORCH_CUDA_RANDN is not set (torch's own draws on this GPU are the reference)";
  const auto file = SafetensorsFile::open(path);
  int compared = 0;
  for (const TensorInfo& info : file.tensors()) {
    const std::string& key = info.name;
    if (key.size() > 7 && key.compare(key.size() - 7, 7, "_second") == 0) continue;
    unsigned long long seed = 0;
    char dtype_text[8] = {};
    int used = 0;
    ASSERT_EQ(std::sscanf(key.c_str(), "s%llu_%7[a-z0-9]_%n", &seed, dtype_text, &used), 2) << key;
    Shape shape;
    for (const char* p = key.c_str() + used; *p;) {
      char* end = nullptr;
      shape.push_back(std::strtoll(p, &end, 10));
      p = *end == 'x' ? end + 1 : end;
    }
    TorchDeviceGenerator generator(seed, gpu());
    const DType dtype = dtype_from_name(dtype_text);
    test::expect_close(key, generator.randn(shape, dtype), file.get(key).to(DType::F32), 0.0);
    if (file.find(key + "_second"))
      test::expect_close(key + "_second", generator.randn(shape, dtype), file.get(key + "_second").to(DType::F32), 0.0);
    ++compared;
  }
  EXPECT_GT(compared, 0);
}
