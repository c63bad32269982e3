// HeunDiscreteScheduler.step as diffusers 0.30 computes it (-ffp-contract=off: torch's float32 order).
#include "pipelines/schedulers/heun_discrete.hpp"

#include <algorithm>
#include <cmath>

#include "mmx/error.hpp"

namespace mmx {
namespace {
constexpr const char* kName = "HeunDiscreteScheduler";
}

HeunDiscreteConfig HeunDiscreteConfig::from_json(const JsonObject& j) {
  HeunDiscreteConfig c;
  read_beta_schedule(j, c.betas);
  c.prediction_type = j.get_string("prediction_type", c.prediction_type);
  c.use_karras_sigmas = j.get_bool("use_karras_sigmas", c.use_karras_sigmas);
  c.clip_sample = j.get_bool("clip_sample", c.clip_sample);
  c.clip_sample_range = j.get_float("clip_sample_range", c.clip_sample_range, limits::kPositiveScale);
  c.timestep_spacing = j.get_string("timestep_spacing", c.timestep_spacing);
  c.steps_offset = j.get_int("steps_offset", c.steps_offset, {0, 1000000, "an offset within the training timesteps"});
  c.betas.rescale_betas_zero_snr = false;  // not a setting of this class: from_config drops it
  return c;
}

HeunDiscreteScheduler::HeunDiscreteScheduler(HeunDiscreteConfig config) : config_(std::move(config)) {
  require_one_of(kName, "prediction_type", config_.prediction_type, {"epsilon", "v_prediction", "sample"});
  require_one_of(kName, "timestep_spacing", config_.timestep_spacing, {"linspace", "leading", "trailing"});
  alphas_cumprod_ = schedule_alphas_cumprod(config_.betas, kName);
}

void HeunDiscreteScheduler::set_timesteps(int64_t steps) {
  const auto& c = config_;
  const int64_t n = c.betas.num_train_timesteps;
  check_step_count(steps, n);
  std::vector<double> t, s;
  k_diffusion_schedule(c.timestep_spacing, n, steps, c.steps_offset, alphas_cumprod_, c.use_karras_sigmas, t, s);
  s.push_back(0.0);
  // σ: the first, then every inner one twice, then the last; timesteps: the first, then every other twice.
  sigmas_.assign(1, static_cast<float>(s.front()));
  for (size_t i = 1; i + 1 < s.size(); ++i) sigmas_.insert(sigmas_.end(), 2, static_cast<float>(s[i]));
  sigmas_.push_back(static_cast<float>(s.back()));
  timesteps_.assign(1, static_cast<float>(t.front()));
  for (size_t i = 1; i < t.size(); ++i) timesteps_.insert(timesteps_.end(), 2, static_cast<float>(t[i]));
  dt_.reset();
  derivative_ = start_sample_ = Tensor();
}

float HeunDiscreteScheduler::init_noise_sigma() const {
  return sigma_init_noise(kName, sigmas_, config_.timestep_spacing);
}

Tensor HeunDiscreteScheduler::scale_model_input(const Tensor& sample, int64_t step_index) const {
  check_step_index(kName, step_index, timesteps_.size());
  return scale_by_sigma(kName, sample, sigmas_[size_t(step_index)]);
}

Tensor HeunDiscreteScheduler::step(const Tensor& model_output, int64_t i, const Tensor& sample) {
  check_step_index(kName, i, timesteps_.size());
  check_same_shape(kName, model_output, sample);
  const bool first = !dt_.has_value();  // diffusers' state_in_first_order
  if (!first && i == 0) fail(kName, ": the corrector of a step cannot be the first step");
  const float sigma = first ? sigmas_[size_t(i)] : sigmas_[size_t(i - 1)];
  const float sigma_next = first ? sigmas_[size_t(i + 1)] : sigmas_[size_t(i)];
  const float sigma_hat = sigma;  // gamma = 0
  const float sigma_input = first ? sigma_hat : sigma_next;
  const float s2p1 = sigma_input * sigma_input + 1.0f, c_out = -sigma_input / std::sqrt(s2p1);
  const float* e = f32_elements(kName, model_output, "model output");
  const float* x = f32_elements(kName, sample, "sample");
  const float range = static_cast<float>(config_.clip_sample_range);
  const std::string& type = config_.prediction_type;
  const int64_t n = sample.numel();
  Tensor derivative = Tensor::empty(sample.shape());
  float* d = derivative.data<float>();
  for (int64_t k = 0; k < n; ++k) {
    float x0;
    if (type == "epsilon") {
      const float scaled = sigma_input * e[k];
      x0 = x[k] - scaled;
    } else if (type == "v_prediction") {
      const float a = e[k] * c_out, b = x[k] / s2p1;
      x0 = a + b;
    } else {
      x0 = e[k];
    }
    if (config_.clip_sample) x0 = std::clamp(x0, -range, range);
    d[k] = (x[k] - x0) / (first ? sigma_hat : sigma_next);
  }
  Tensor out = Tensor::empty(sample.shape());
  float* y = out.data<float>();
  if (first) {
    const float dt = sigma_next - sigma_hat;
    for (int64_t k = 0; k < n; ++k) y[k] = x[k] + d[k] * dt;
    dt_ = dt;
    derivative_ = derivative;
    start_sample_ = sample.clone();
  } else {
    const float* previous = derivative_.data<float>();
    const float* start = start_sample_.data<float>();
    for (int64_t k = 0; k < n; ++k) {
      const float mean = (previous[k] + d[k]) / 2.0f;
      y[k] = start[k] + mean * *dt_;
    }
    dt_.reset();
    derivative_ = start_sample_ = Tensor();
  }
  return out;
}

Tensor HeunDiscreteScheduler::add_noise(const Tensor& original, const Tensor& noise, int64_t step_index) const {
  check_step_index(kName, step_index, timesteps_.size());
  return add_sigma_noise(kName, original, noise, sigmas_[size_t(step_index)]);
}

std::unique_ptr<Scheduler> load_heun_discrete(const JsonObject& config) {
  return std::make_unique<HeunDiscreteScheduler>(HeunDiscreteConfig::from_json(config));
}

}  // namespace mmx
