// TCDScheduler.step as diffusers 0.30 computes it (-ffp-contract=off: torch's float32 order).
#include "pipelines/schedulers/tcd.hpp"

#include <cmath>

#include "mmx/error.hpp"

namespace mmx {
namespace {
constexpr const char* kName = "TCDScheduler";
}

TCDScheduler::TCDScheduler(LCMConfig config) : config_(std::move(config)) {
  require_one_of(kName, "prediction_type", config_.prediction_type, {"epsilon", "sample", "v_prediction"});
  alphas_cumprod_ = schedule_alphas_cumprod(config_.betas, kName, /*finite_last_sigma=*/false);
}

void TCDScheduler::set_timesteps(int64_t steps) {
  const auto t = consistency_timesteps(config_.betas.num_train_timesteps, config_.original_inference_steps, steps, kName);
  timesteps_.assign(t.begin(), t.end());
}

Tensor TCDScheduler::scale_model_input(const Tensor& sample, int64_t step_index) const {
  check_step_index(kName, step_index, timesteps_.size());
  return sample.clone();
}

Tensor TCDScheduler::step(const Tensor& model_output, int64_t i, const Tensor& sample) {
  check_step_index(kName, i, timesteps_.size());
  check_same_shape(kName, model_output, sample);
  if (eta_ < 0 || eta_ > 1) usage_error("TCD's eta (gamma) is between 0 and 1, got ", eta_);
  const int64_t t = int64_t(timesteps_[size_t(i)]);
  const int64_t prev = i + 1 < int64_t(timesteps_.size()) ? int64_t(timesteps_[size_t(i + 1)]) : 0;
  // (1 − η) is a Python float (double) times an int64 tensor: float32 arithmetic, then floor.
  const int64_t s = static_cast<int64_t>(std::floor(static_cast<float>(1.0 - double(eta_)) * static_cast<float>(prev)));
  const float alpha = alphas_cumprod_[size_t(t)], beta = 1.0f - alpha;
  const float alpha_prev = alphas_cumprod_[size_t(prev)];
  const float alpha_s = alphas_cumprod_[size_t(s)], beta_s = 1.0f - alpha_s;
  const float sqrt_a = std::sqrt(alpha), sqrt_b = std::sqrt(beta), sqrt_as = std::sqrt(alpha_s), sqrt_bs = std::sqrt(beta_s);
  const float* m = f32_elements(kName, model_output, "model output");
  const float* x = f32_elements(kName, sample, "sample");
  const std::string& type = config_.prediction_type;
  Tensor noised = Tensor::empty(sample.shape());
  float* y = noised.data<float>();
  for (int64_t k = 0; k < sample.numel(); ++k) {
    float x0, eps;
    if (type == "epsilon") {
      x0 = (x[k] - sqrt_b * m[k]) / sqrt_a;
      eps = m[k];
    } else if (type == "sample") {
      x0 = m[k];
      eps = (x[k] - sqrt_a * x0) / sqrt_b;
    } else {
      const float p = sqrt_a * x[k], q = sqrt_b * m[k];
      x0 = p - q;
      const float r = sqrt_a * m[k], u = sqrt_b * x[k];
      eps = r + u;
    }
    const float a = sqrt_as * x0, b = sqrt_bs * eps;
    y[k] = a + b;
  }
  if (!(eta_ > 0) || i == int64_t(timesteps_.size()) - 1) return noised;
  const Tensor noise = draw_noise(model_output.shape());
  const float ratio = alpha_prev / alpha_s;
  return weighted_sum(sample.shape(), {{std::sqrt(ratio), y}, {std::sqrt(1.0f - ratio), noise.data<float>()}});
}

Tensor TCDScheduler::add_noise(const Tensor& original, const Tensor& noise, int64_t step_index) const {
  check_step_index(kName, step_index, timesteps_.size());
  return ddpm_add_noise(alphas_cumprod_, int64_t(timesteps_[size_t(step_index)]), original, noise, kName);
}

std::unique_ptr<Scheduler> load_tcd(const JsonObject& config) {
  return std::make_unique<TCDScheduler>(LCMConfig::from_json(config, kName));
}

}  // namespace mmx
