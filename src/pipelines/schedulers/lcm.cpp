// LCMScheduler.step as diffusers 0.30 computes it (-ffp-contract=off: torch's float32 order).
#include "pipelines/schedulers/lcm.hpp"

#include <algorithm>
#include <cmath>

#include "mmx/error.hpp"

namespace mmx {
namespace {
constexpr const char* kName = "LCMScheduler";
}

LCMConfig LCMConfig::from_json(const JsonObject& j, const char* class_name) {
  LCMConfig c;
  read_beta_schedule(j, c.betas);
  c.original_inference_steps = j.get_int("original_inference_steps", c.original_inference_steps,
                                         {1, 1000000, "the distillation schedule's length"});
  c.clip_sample = j.get_bool("clip_sample", c.clip_sample);
  c.clip_sample_range = j.get_float("clip_sample_range", c.clip_sample_range, limits::kPositiveScale);
  c.set_alpha_to_one = j.get_bool("set_alpha_to_one", c.set_alpha_to_one);
  c.prediction_type = j.get_string("prediction_type", c.prediction_type);
  c.timestep_scaling = j.get_float("timestep_scaling", c.timestep_scaling, limits::kPositiveScale);
  if (j.get_bool("thresholding", false))
    fail(j.source(), ": ", class_name, "'s dynamic thresholding (thresholding: true, for pixel-space models) is not implemented by mmx");
  return c;
}

Tensor ddpm_add_noise(const std::vector<float>& alphas_cumprod, int64_t t, const Tensor& original, const Tensor& noise,
                      const std::string& class_name) {
  check_same_shape(class_name, original, noise);
  const float a = alphas_cumprod[size_t(t)];
  return weighted_sum(original.shape(), {{std::sqrt(a), f32_elements(class_name, original, "original samples")},
                                         {std::sqrt(1.0f - a), f32_elements(class_name, noise, "noise")}});
}

LCMScheduler::LCMScheduler(LCMConfig config) : config_(std::move(config)) {
  require_one_of(kName, "prediction_type", config_.prediction_type, {"epsilon", "sample", "v_prediction"});
  alphas_cumprod_ = schedule_alphas_cumprod(config_.betas, kName, /*finite_last_sigma=*/false);
}

void LCMScheduler::set_timesteps(int64_t steps) {
  const auto t = consistency_timesteps(config_.betas.num_train_timesteps, config_.original_inference_steps, steps, kName);
  timesteps_.assign(t.begin(), t.end());
}

Tensor LCMScheduler::scale_model_input(const Tensor& sample, int64_t step_index) const {
  check_step_index(kName, step_index, timesteps_.size());
  return sample.clone();
}

Tensor LCMScheduler::step(const Tensor& model_output, int64_t i, const Tensor& sample) {
  check_step_index(kName, i, timesteps_.size());
  check_same_shape(kName, model_output, sample);
  const int64_t t = int64_t(timesteps_[size_t(i)]);
  const int64_t prev = i + 1 < int64_t(timesteps_.size()) ? int64_t(timesteps_[size_t(i + 1)]) : t;
  const float alpha = alphas_cumprod_[size_t(t)];
  const float alpha_prev = prev >= 0 ? alphas_cumprod_[size_t(prev)] : (config_.set_alpha_to_one ? 1.0f : alphas_cumprod_[0]);
  const float beta = 1.0f - alpha, beta_prev = 1.0f - alpha_prev;
  // The boundary condition scalings with σ_data = 0.5: c_skip = σ_d² / (s² + σ_d²) — torch evaluates
  // float / tensor as reciprocal(tensor) · float — and c_out = s / (s² + σ_d²)^½.
  const float scaled = static_cast<float>(t) * static_cast<float>(config_.timestep_scaling);
  const float c_skip = 1.0f / (scaled * scaled + 0.25f) * 0.25f;
  const float c_out = scaled / std::sqrt(scaled * scaled + 0.25f);
  const float sqrt_a = std::sqrt(alpha), sqrt_b = std::sqrt(beta);
  const float* m = f32_elements(kName, model_output, "model output");
  const float* x = f32_elements(kName, sample, "sample");
  const float range = static_cast<float>(config_.clip_sample_range);
  const std::string& type = config_.prediction_type;
  Tensor denoised = Tensor::empty(sample.shape());
  float* d = denoised.data<float>();
  for (int64_t k = 0; k < sample.numel(); ++k) {
    float x0;
    if (type == "epsilon") x0 = (x[k] - sqrt_b * m[k]) / sqrt_a;
    else if (type == "sample") x0 = m[k];
    else {
      const float p = sqrt_a * x[k], q = sqrt_b * m[k];
      x0 = p - q;
    }
    if (config_.clip_sample) x0 = std::clamp(x0, -range, range);
    const float kept = c_out * x0, skipped = c_skip * x[k];
    d[k] = kept + skipped;
  }
  if (i == int64_t(timesteps_.size()) - 1) return denoised;
  const Tensor noise = draw_noise(model_output.shape());
  return weighted_sum(sample.shape(), {{std::sqrt(alpha_prev), d}, {std::sqrt(beta_prev), noise.data<float>()}});
}

Tensor LCMScheduler::add_noise(const Tensor& original, const Tensor& noise, int64_t step_index) const {
  check_step_index(kName, step_index, timesteps_.size());
  return ddpm_add_noise(alphas_cumprod_, int64_t(timesteps_[size_t(step_index)]), original, noise, kName);
}

std::unique_ptr<Scheduler> load_lcm(const JsonObject& config) {
  return std::make_unique<LCMScheduler>(LCMConfig::from_json(config, kName));
}

}  // namespace mmx
