// EulerAncestralDiscreteScheduler.step (k-diffusion's sample_euler_ancestral with eta 1): every scalar a
// float32 0-d tensor as in diffusers, every element operation in torch's order (-ffp-contract=off).
#include "pipelines/schedulers/euler_ancestral.hpp"

#include <algorithm>
#include <cmath>

#include "mmx/error.hpp"

namespace mmx {

EulerAncestralConfig EulerAncestralConfig::from_json(const JsonObject& j) {
  EulerAncestralConfig c;
  read_beta_schedule(j, c.betas);
  c.prediction_type = j.get_string("prediction_type", c.prediction_type);
  c.timestep_spacing = j.get_string("timestep_spacing", c.timestep_spacing);
  c.steps_offset = j.get_int("steps_offset", c.steps_offset, {0, 1000000, "an offset within the training timesteps"});
  return c;
}

EulerAncestralScheduler::EulerAncestralScheduler(EulerAncestralConfig config) : config_(std::move(config)) {
  const char* name = "EulerAncestralDiscreteScheduler";
  const auto& c = config_;
  // diffusers raises NotImplementedError for "sample" in this class.
  require_one_of(name, "prediction_type", c.prediction_type, {"epsilon", "v_prediction"});
  require_one_of(name, "timestep_spacing", c.timestep_spacing, {"linspace", "leading", "trailing"});
  alphas_cumprod_ = schedule_alphas_cumprod(c.betas, name);
}

void EulerAncestralScheduler::set_timesteps(int64_t steps) {
  const int64_t n = config_.betas.num_train_timesteps;
  check_step_count(steps, n);
  std::vector<double> t, s;
  k_diffusion_schedule(config_.timestep_spacing, n, steps, config_.steps_offset, alphas_cumprod_, false, t, s);
  sigmas_.assign(s.begin(), s.end());  // float64 → float32, as astype(np.float32)
  timesteps_.assign(t.begin(), t.end());
  sigmas_.push_back(0.0f);
}

float EulerAncestralScheduler::init_noise_sigma() const {
  return sigma_init_noise(class_name(), sigmas_, config_.timestep_spacing);
}

Tensor EulerAncestralScheduler::scale_model_input(const Tensor& sample, int64_t step_index) const {
  check_step_index(class_name(), step_index, timesteps_.size());
  return scale_by_sigma(class_name(), sample, sigmas_[size_t(step_index)]);
}

Tensor EulerAncestralScheduler::step(const Tensor& model_output, int64_t step_index, const Tensor& sample) {
  check_step_index(class_name(), step_index, timesteps_.size());
  check_same_shape(class_name(), model_output, sample);
  const float sigma = sigmas_[size_t(step_index)], to = sigmas_[size_t(step_index + 1)];
  const float sigma_up = std::sqrt(to * to * (sigma * sigma - to * to) / (sigma * sigma));
  const float sigma_down = std::sqrt(to * to - sigma_up * sigma_up);
  const float dt = sigma_down - sigma;
  const float s2p1 = sigma * sigma + 1.0f, c_out = -sigma / std::sqrt(s2p1);
  const float* e = f32_elements(class_name(), model_output, "model output");
  const float* x = f32_elements(class_name(), sample, "sample");
  const Tensor noise = draw_noise(model_output.shape());
  const float* z = noise.data<float>();
  Tensor out = Tensor::empty(sample.shape());
  float* y = out.data<float>();
  const bool epsilon = config_.prediction_type == "epsilon";
  for (int64_t i = 0; i < sample.numel(); ++i) {
    float x0;
    if (epsilon) {
      const float scaled = sigma * e[i];
      x0 = x[i] - scaled;
    } else {
      const float a = e[i] * c_out, b = x[i] / s2p1;
      x0 = a + b;
    }
    const float derivative = (x[i] - x0) / sigma;
    const float moved = derivative * dt;
    const float euler = x[i] + moved;
    const float fresh = z[i] * sigma_up;
    y[i] = euler + fresh;
  }
  return out;
}

Tensor EulerAncestralScheduler::add_noise(const Tensor& original, const Tensor& noise, int64_t step_index) const {
  check_step_index(class_name(), step_index, timesteps_.size());
  return add_sigma_noise(class_name(), original, noise, sigmas_[size_t(step_index)]);
}

std::unique_ptr<Scheduler> load_euler_ancestral(const JsonObject& config) {
  return std::make_unique<EulerAncestralScheduler>(EulerAncestralConfig::from_json(config));
}

}  // namespace mmx
