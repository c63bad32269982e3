// EulerDiscreteScheduler as diffusers 0.30 computes it. The dtypes matter for parity: torch builds
// betas, alphas_cumprod and sigmas in float32 (cumprod accumulating in double), numpy builds the
// timestep grid and interpolates in float64, and the result is stored as float32 again.
#include <algorithm>
#include <cmath>
#include <numbers>

#include "io/json_config.hpp"
#include "core/torch_math.hpp"
#include "mmx/error.hpp"
#include "pipelines/schedulers/euler_discrete.hpp"
#include "pipelines/schedulers/noise_schedule.hpp"

namespace mmx {
namespace {

constexpr const char* kName = "EulerDiscreteScheduler";

BetaSchedule beta_schedule_of(const EulerDiscreteConfig& c) {
  BetaSchedule b;
  b.num_train_timesteps = c.num_train_timesteps;
  b.beta_start = c.beta_start;
  b.beta_end = c.beta_end;
  b.beta_schedule = c.beta_schedule;
  b.trained_betas = c.trained_betas;
  b.rescale_betas_zero_snr = c.rescale_betas_zero_snr;
  return b;
}

}  // namespace

EulerDiscreteConfig EulerDiscreteConfig::load(const std::string& path) {
  const JsonObject j = JsonObject::load(path);
  const std::string cls = j.get_string("_class_name", "EulerDiscreteScheduler");
  if (cls != "EulerDiscreteScheduler") fail(path, ": _class_name '", cls, "' is not an EulerDiscreteScheduler");
  return from_json(j);
}

EulerDiscreteConfig EulerDiscreteConfig::from_json(const JsonObject& j) {
  static constexpr FloatLimits kBeta{0, 1, true, "a noise variance per step is in (0, 1]"};
  const std::string& path = j.source();
  EulerDiscreteConfig c;
  c.num_train_timesteps = j.get_int("num_train_timesteps", c.num_train_timesteps, {1, 1000000, "a schedule trains on 1 to 10^6 timesteps"});
  c.beta_start = j.get_float("beta_start", c.beta_start, kBeta);
  c.beta_end = j.get_float("beta_end", c.beta_end, kBeta);
  c.beta_schedule = j.get_string("beta_schedule", c.beta_schedule);
  if (j.has("trained_betas")) {
    const auto& tb = j.json().at("trained_betas");
    if (!tb.is_array()) fail(path, ": trained_betas must be a list of numbers");
    for (const auto& b : tb) {
      if (!b.is_number()) fail(path, ": trained_betas must be a list of numbers");
      c.trained_betas.push_back(b.get<double>());
      j.check("trained_betas", c.trained_betas.back(), kBeta);
    }
  }
  c.prediction_type = j.get_string("prediction_type", c.prediction_type);
  c.interpolation_type = j.get_string("interpolation_type", c.interpolation_type);
  c.use_karras_sigmas = j.get_bool("use_karras_sigmas", c.use_karras_sigmas);
  if (j.has("sigma_min")) c.sigma_min = j.get_float("sigma_min", 0, limits::kPositiveScale);
  if (j.has("sigma_max")) c.sigma_max = j.get_float("sigma_max", 0, limits::kPositiveScale);
  c.timestep_spacing = j.get_string("timestep_spacing", c.timestep_spacing);
  c.timestep_type = j.get_string("timestep_type", c.timestep_type);
  c.steps_offset = j.get_int("steps_offset", c.steps_offset, {0, 1000000, "an offset within the training timesteps"});
  c.rescale_betas_zero_snr = j.get_bool("rescale_betas_zero_snr", c.rescale_betas_zero_snr);
  c.final_sigmas_type = j.get_string("final_sigmas_type", c.final_sigmas_type);
  return c;
}

EulerDiscreteScheduler::EulerDiscreteScheduler(EulerDiscreteConfig config) : config_(std::move(config)) {
  const auto& c = config_;
  const BetaSchedule betas = beta_schedule_of(c);
  require_one_of(kName, "prediction_type", c.prediction_type, {"epsilon", "v_prediction", "sample", "original_sample"});
  require_one_of(kName, "interpolation_type", c.interpolation_type, {"linear", "log_linear"});
  require_one_of(kName, "timestep_spacing", c.timestep_spacing, {"linspace", "leading", "trailing"});
  require_one_of(kName, "timestep_type", c.timestep_type, {"discrete", "continuous"});
  require_one_of(kName, "final_sigmas_type", c.final_sigmas_type, {"zero", "sigma_min"});
  alphas_cumprod_ = schedule_alphas_cumprod(betas, kName);
}

void EulerDiscreteScheduler::set_timesteps(int64_t steps) {
  const auto& c = config_;
  const int64_t n_train = c.num_train_timesteps;
  check_step_count(steps, n_train);
  std::vector<double> t = float_timestep_grid(c.timestep_spacing, n_train, steps, c.steps_offset);
  const std::vector<float> full_sigmas = training_sigmas(alphas_cumprod_), log_sigmas = log_of(full_sigmas);
  std::vector<double> s;
  if (c.interpolation_type == "linear") {
    for (double x : t) s.push_back(numpy_interp(x, full_sigmas));
  } else {  // log_linear: torch.linspace(log σ_max, log σ_min, steps + 1).exp() in float32
    for (float v : torch_linspace(std::log(full_sigmas.back()), std::log(full_sigmas.front()), steps + 1))
      s.push_back(torch_exp(v));
  }
  if (c.use_karras_sigmas) {  // Karras et al. (2022), rho = 7
    s = karras_sigmas(c.sigma_min.value_or(s.back()), c.sigma_max.value_or(s.front()), steps);
    t.clear();
    for (double v : s) t.push_back(sigma_to_t(v, log_sigmas));
  }
  const float last = c.final_sigmas_type == "zero" ? 0.0f : std::sqrt((1.0f - alphas_cumprod_[0]) / alphas_cumprod_[0]);
  sigmas_.clear();
  for (double v : s) sigmas_.push_back(static_cast<float>(v));
  sigmas_.push_back(last);
  timesteps_.clear();
  if (c.timestep_type == "continuous" && c.prediction_type == "v_prediction") {
    for (size_t i = 0; i + 1 < sigmas_.size(); ++i) timesteps_.push_back(0.25f * torch_log(sigmas_[i]));
  } else {
    for (double v : t) timesteps_.push_back(static_cast<float>(v));
  }
  if (timesteps_.size() + 1 != sigmas_.size())
    fail("EulerDiscreteScheduler: ", timesteps_.size(), " timesteps for ", sigmas_.size(), " sigmas (", steps, " steps)");
}

float EulerDiscreteScheduler::init_noise_sigma() const {
  return sigma_init_noise(kName, sigmas_, config_.timestep_spacing);
}

Tensor EulerDiscreteScheduler::scale_model_input(const Tensor& sample, int64_t step_index) const {
  check_step_index(kName, step_index, timesteps_.size());
  return scale_by_sigma(kName, sample, sigmas_[size_t(step_index)]);
}

Tensor EulerDiscreteScheduler::step(const Tensor& model_output, int64_t step_index, const Tensor& sample) {
  check_step_index(kName, step_index, timesteps_.size());
  check_same_shape(kName, model_output, sample);
  const float sigma = sigmas_[size_t(step_index)];
  const float sigma_hat = sigma;  // gamma = 0: no churn
  const float dt = sigmas_[size_t(step_index + 1)] - sigma_hat;
  const float* e = f32_elements(kName, model_output, "model output");
  const float* x = f32_elements(kName, sample, "sample");
  Tensor out = Tensor::empty(sample.shape());
  float* y = out.data<float>();
  const float s2p1 = sigma * sigma + 1.0f, c_out = -sigma / std::sqrt(s2p1);
  auto euler = [&](auto predict_x0) {  // x0: the predicted clean sample
    for (int64_t i = 0; i < sample.numel(); ++i) {
      const float derivative = (x[i] - predict_x0(i)) / sigma_hat;
      y[i] = x[i] + derivative * dt;
    }
  };
  const std::string& type = config_.prediction_type;
  if (type == "epsilon") euler([&](int64_t i) { return x[i] - sigma_hat * e[i]; });
  else if (type == "v_prediction") euler([&](int64_t i) { return e[i] * c_out + x[i] / s2p1; });
  else euler([&](int64_t i) { return e[i]; });
  return out;
}

Tensor EulerDiscreteScheduler::add_noise(const Tensor& original_samples, const Tensor& noise, int64_t step_index) const {
  check_step_index(kName, step_index, timesteps_.size());
  return add_sigma_noise(kName, original_samples, noise, sigmas_[size_t(step_index)]);
}

std::unique_ptr<Scheduler> load_euler_discrete(const JsonObject& config) {
  return std::make_unique<EulerDiscreteScheduler>(EulerDiscreteConfig::from_json(config));
}

}  // namespace mmx
