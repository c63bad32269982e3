// AutoencoderKL against diffusers 0.30.3 (expected/sdxl-tiny.safetensors): vae.decode on a
// random latent, and the 3-step run's last latents decoded into the pipeline's float and uint8 images,
// from the fp32 files and from the fp16 variant.
#include <cmath>

#include "io/checkpoint.hpp"
#include "mmx/torch_random.hpp"
#include "io/diffusers_folder.hpp"
#include "models/autoencoder_kl.hpp"
#include "test_util.hpp"

using namespace mmx;

namespace {

AutoencoderKL load_vae(const std::string& variant) {
  const std::string dir = test::data("models/sdxl-tiny/vae");
  const auto config = AutoencoderKLConfig::from_json(JsonObject::load(dir + "/config.json"));
  return load_model<AutoencoderKL>(config, Checkpoint::open(component_weights(dir, "diffusion_pytorch_model", variant)),
                                   test::placement(), HalfWeights::AsStored);  // as the pipeline loads it
}

Tensor divided(const Tensor& x, float by) {  // torch: tensor / python float, in float32
  Tensor y = x.clone();
  for (int64_t i = 0; i < y.numel(); ++i) y.data<float>()[i] /= by;
  return y;
}

// VaeImageProcessor.postprocess: (x / 2 + 0.5).clamp(0, 1), NCHW → NHWC.
Tensor to_image(const Tensor& x) {
  const int64_t c = x.dim(1), h = x.dim(2), w = x.dim(3);
  Tensor y = Tensor::empty({1, h, w, c});
  for (int64_t ch = 0; ch < c; ++ch)
    for (int64_t i = 0; i < h * w; ++i)
      y.data<float>()[i * c + ch] = std::clamp(x.data<float>()[ch * h * w + i] / 2 + 0.5f, 0.0f, 1.0f);
  return y;
}

Tensor last_latents(const Tensor& steps) {
  const int64_t n = steps.dim(0);
  return steps.narrow0(n - 1, 1).clone().reshape({1, steps.dim(2), steps.dim(3), steps.dim(4)});
}

}  // namespace

TEST(VAE, DecodeIsDiffusers) {
  const auto expected = SafetensorsFile::open(test::data("expected/sdxl-tiny.safetensors"));
  const AutoencoderKL vae = load_vae("");
  const float scaling = static_cast<float>(vae.config().scaling_factor);
  EXPECT_EQ(vae.scale_factor(), 2);
  test::expect_close("vae_decode_out", vae.decode(divided(expected.get("vae_decode_in"), scaling)),
                     expected.get("vae_decode_out"), 1e-5);
}

TEST(VAE, TheThreeStepRunsImageFromItsLastLatents) {
  const auto expected = SafetensorsFile::open(test::data("expected/sdxl-tiny.safetensors"));
  const AutoencoderKL vae = load_vae("");
  const float scaling = static_cast<float>(vae.config().scaling_factor);
  const Tensor image = to_image(vae.decode(divided(last_latents(expected.get("step_latents")), scaling)));
  test::expect_close("image", image, expected.get("image"), 1e-5);
  const Tensor pixels = expected.get("image_uint8");  // round(image · 255), I64
  int64_t worst = 0, differing = 0;
  for (int64_t i = 0; i < pixels.numel(); ++i) {
    const int64_t got = std::lround(image.data<float>()[i] * 255.0f);
    const int64_t d = std::abs(got - pixels.data<int64_t>()[i]);
    worst = std::max(worst, d);
    differing += d != 0;
  }
  std::printf("  image_uint8: %lld of %lld pixels differ, by at most %lld\n", static_cast<long long>(differing),
              static_cast<long long>(pixels.numel()), static_cast<long long>(worst));
  EXPECT_LE(worst, 1);

  const AutoencoderKL vae16 = load_vae("fp16");
  test::expect_close("fp16_weights_image",
                     to_image(vae16.decode(divided(last_latents(expected.get("fp16_weights_step_latents")), scaling))),
                     expected.get("fp16_weights_image"), 1e-5);
}

// vae.encode(x).latent_dist from diffusers 0.30.3 itself (tools/make_vae_encode_reference.py): two crops of
// real photos, 64×48, through the encoder (its pad-then-stride-2 downsampling, the mid attention, quant_conv).
TEST(VAE, EncodeIsDiffusers) {
  const auto expected = SafetensorsFile::open(test::data("expected/sdxl-tiny-vae-encode.safetensors"));
  for (const char* variant : {"", "fp16"}) {
    const AutoencoderKL vae = load_vae(variant);
    const LatentDistribution dist = vae.encode(expected.get("vae_encode_in"));
    if (*variant) {  // the fp16 file's weights (kept as F16 here, upcast to f32 by diffusers)
      test::expect_close("fp16_weights_vae_encode_mean", dist.mean, expected.get("fp16_weights_vae_encode_mean"), 1e-5);
      continue;
    }
    test::expect_close("vae_encode_mean", dist.mean, expected.get("vae_encode_mean"), 1e-5);
    test::expect_close("vae_encode_logvar", dist.logvar, expected.get("vae_encode_logvar"), 1e-5);
    test::expect_close("vae_encode_std", dist.std(), expected.get("vae_encode_std"), 1e-5);
    // sample(generator=manual_seed(0)) = mean + std · randn, the noise from the ported generator
    const Tensor noise = TorchGenerator(0).randn(dist.mean.shape());
    test::expect_close("vae_encode_noise", noise, expected.get("vae_encode_noise"), 0.0);
    test::expect_close("vae_encode_sample", dist.sample(noise), expected.get("vae_encode_sample"), 1e-5);
  }
  const AutoencoderKL vae = load_vae("");
  EXPECT_THROW(vae.encode(Tensor::zeros({1, 3, 63, 48})), Error);  // not a multiple of the scale factor
  EXPECT_THROW(vae.encode(Tensor::zeros({1, 4, 64, 48})), Error);  // wrong channel count
}
