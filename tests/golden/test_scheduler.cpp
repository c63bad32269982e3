// EulerDiscreteScheduler and the SDXL denoising loop around the UNet, against diffusers 0.30.3
// (expected/sdxl-tiny.safetensors): timesteps and sigmas for 3 and 50 steps, init_noise_sigma, the
// scaled initial latents, every UNet input (scale_model_input) and every step's latents from the
// recorded UNet outputs with guidance 5.0.
#include <cmath>

#include "mmx/error.hpp"
#include "mmx/scheduler.hpp"
#include "pipelines/schedulers/euler_discrete.hpp"
#include "test_util.hpp"

using namespace mmx;

namespace {

EulerDiscreteScheduler sdxl_scheduler() {
  return EulerDiscreteScheduler(EulerDiscreteConfig::load(test::data("models/sdxl-tiny/scheduler/scheduler_config.json")));
}

Tensor vec(const std::vector<float>& v) { return Tensor::from_vector(v, {static_cast<int64_t>(v.size())}); }

Tensor part(const Tensor& t, int64_t i) {  // t[i] of a stacked tensor, with its leading axis dropped
  Tensor row = t.narrow0(i, 1).clone();
  Shape s(t.shape().begin() + 1, t.shape().end());
  return row.reshape(s);
}

}  // namespace

TEST(EulerDiscrete, TimestepsSigmasAndInitNoiseSigmaAreDiffusers) {
  const auto expected = SafetensorsFile::open(test::data("expected/sdxl-tiny.safetensors"));
  for (int steps : {3, 50}) {
    auto s = sdxl_scheduler();
    s.set_timesteps(steps);
    const std::string n = std::to_string(steps);
    test::expect_close("timesteps_" + n, vec(s.timesteps()), expected.get("timesteps_" + n), 0);
    test::expect_close("sigmas_" + n, vec(s.sigmas()), expected.get("sigmas_" + n), 0);
    test::expect_close("init_noise_sigma_" + n, vec({s.init_noise_sigma()}), expected.get("init_noise_sigma_" + n), 0);
  }
  // The real SDXL base scheduler config is the one the fixture used.
  const auto real = EulerDiscreteConfig::load(test::data("real-configs/stable-diffusion-xl-base-1.0/scheduler/scheduler_config.json"));
  EXPECT_EQ(real.timestep_spacing, "leading");
  EXPECT_EQ(real.beta_schedule, "scaled_linear");
  EXPECT_EQ(real.steps_offset, 1);
}

TEST(EulerDiscrete, DenoisingLoopReproducesEveryStepFromTheRecordedUnetOutputs) {
  const auto expected = SafetensorsFile::open(test::data("expected/sdxl-tiny.safetensors"));
  auto s = sdxl_scheduler();
  s.set_timesteps(3);
  const Tensor randn = expected.get("init_latents_randn");
  Tensor latents = Tensor::empty(randn.shape());
  for (int64_t i = 0; i < randn.numel(); ++i) latents.data<float>()[i] = randn.data<float>()[i] * s.init_noise_sigma();
  test::expect_close("init_latents_scaled", latents, expected.get("init_latents_scaled"), 0);
  const Tensor unet_in = expected.get("unet_in_sample"), unet_out = expected.get("unet_out");
  const Tensor steps = expected.get("step_latents");
  for (int64_t i = 0; i < 3; ++i) {
    const Tensor scaled = s.scale_model_input(latents, i);
    const Tensor in = part(unet_in, i);  // [2, 4, 32, 32]: the same latents twice (uncond, cond)
    test::expect_close("unet_in_sample[" + std::to_string(i) + "][0]", scaled, part(in, 0).reshape(scaled.shape()), 0);
    test::expect_close("unet_in_sample[" + std::to_string(i) + "][1]", scaled, part(in, 1).reshape(scaled.shape()), 0);
    const Tensor noise = classifier_free_guidance(part(unet_out, i), 5.0f);
    latents = s.step(noise, i, latents);
    test::expect_close("step_latents[" + std::to_string(i) + "]", latents, part(steps, i), 0);
  }
}

TEST(EulerDiscrete, OtherSpacingsAndSchedulesFollowTheirFormulas) {
  // Values worked out by hand from diffusers' definitions (not from an implementation).
  EulerDiscreteConfig c;  // linspace, linear betas
  EulerDiscreteScheduler lin(c);
  lin.set_timesteps(4);
  EXPECT_EQ(lin.timesteps(), (std::vector<float>{999, 666, 333, 0}));
  EXPECT_FLOAT_EQ(lin.init_noise_sigma(), lin.sigmas()[0]);  // linspace: no sqrt(σ² + 1)
  EXPECT_EQ(lin.sigmas().back(), 0.0f);
  c.timestep_spacing = "trailing";
  EulerDiscreteScheduler trailing(c);
  trailing.set_timesteps(3);  // arange(1000, 0, -333.33).round() − 1
  EXPECT_EQ(trailing.timesteps(), (std::vector<float>{999, 666, 332}));
  c.timestep_spacing = "leading";
  c.steps_offset = 1;
  EulerDiscreteScheduler leading(c);
  leading.set_timesteps(7);  // 1000 // 7 = 142: 852, 710, ..., 0, plus the offset
  EXPECT_EQ(leading.timesteps(), (std::vector<float>{853, 711, 569, 427, 285, 143, 1}));
  // The first beta of a linear schedule is beta_start, so alphas_cumprod[0] = 1 − beta_start (in float32).
  EXPECT_EQ(lin.alphas_cumprod()[0], 1.0f - 0.0001f);
  EXPECT_EQ(lin.alphas_cumprod()[999], lin.alphas_cumprod()[998] * (1.0f - 0.02f));  // the last beta is beta_end
  // Karras sigmas run from sigma_max to sigma_min with rho = 7.
  c.use_karras_sigmas = true;
  c.sigma_min = 0.1;
  c.sigma_max = 10;
  EulerDiscreteScheduler karras(c);
  karras.set_timesteps(5);
  EXPECT_FLOAT_EQ(karras.sigmas()[0], 10.0f);
  EXPECT_FLOAT_EQ(karras.sigmas()[4], 0.1f);
  const double mid = std::pow((std::pow(10.0, 1 / 7.0) + std::pow(0.1, 1 / 7.0)) / 2, 7.0);
  EXPECT_FLOAT_EQ(karras.sigmas()[2], static_cast<float>(mid));
  for (size_t i = 1; i < karras.timesteps().size(); ++i) EXPECT_LT(karras.timesteps()[i], karras.timesteps()[i - 1]);
  // Zero terminal SNR: the last alphas_cumprod is 2^-24, so the largest sigma is finite.
  EulerDiscreteConfig z;
  z.rescale_betas_zero_snr = true;
  EulerDiscreteScheduler zero(z);
  EXPECT_EQ(zero.alphas_cumprod().back(), std::ldexp(1.0f, -24));
  zero.set_timesteps(10);
  EXPECT_TRUE(std::isfinite(zero.sigmas()[0]));
}

TEST(EulerDiscrete, VPredictionStepUsesTheSkipAndOutScalings) {
  EulerDiscreteConfig c;
  c.prediction_type = "v_prediction";
  EulerDiscreteScheduler s(c);
  s.set_timesteps(2);
  const float sigma = s.sigmas()[0], next = s.sigmas()[1];
  const Tensor x = Tensor::from_vector(std::vector<float>{1.0f, -2.0f}, {2});
  const Tensor v = Tensor::from_vector(std::vector<float>{0.5f, 0.25f}, {2});
  const Tensor y = s.step(v, 0, x);
  for (int i = 0; i < 2; ++i) {
    const double xi = x.data<float>()[i], vi = v.data<float>()[i];
    const double x0 = vi * (-sigma / std::sqrt(double(sigma) * sigma + 1)) + xi / (double(sigma) * sigma + 1);
    EXPECT_NEAR(y.data<float>()[i], xi + (xi - x0) / sigma * (next - sigma), 1e-4 * std::abs(xi));
  }
}

TEST(EulerDiscrete, BadConfigsAreClearErrors) {
  EulerDiscreteConfig c;
  c.beta_schedule = "cubic";
  EXPECT_THROW(EulerDiscreteScheduler{c}, Error);
  c = {};
  c.timestep_spacing = "sideways";
  try {
    EulerDiscreteScheduler s(c);
    FAIL() << "accepted timestep_spacing 'sideways'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("timestep_spacing 'sideways'"), std::string::npos) << e.what();
  }
  EulerDiscreteScheduler s{EulerDiscreteConfig{}};
  EXPECT_THROW(s.set_timesteps(0), Error);
  EXPECT_THROW(s.set_timesteps(1001), Error);
  EXPECT_THROW(s.init_noise_sigma(), Error);  // before set_timesteps
  s.set_timesteps(3);
  const Tensor x = Tensor::zeros({4});
  EXPECT_THROW(s.step(x, 3, x), Error);
  EXPECT_THROW(classifier_free_guidance(Tensor::zeros({3, 2}), 5.0f), Error);
}
