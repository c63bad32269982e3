// DDIMScheduler.step with eta 0 (arXiv 2010.02502, eq. 12): x₀ predicted from the model output, then moved
// to the previous timestep's noise level along the predicted noise. Scalars are float32 0-d tensors in
// diffusers, so every product and square root here is a float32 one, in its order.
#include "pipelines/schedulers/ddim.hpp"

#include <algorithm>
#include <cmath>

#include "mmx/error.hpp"

namespace mmx {

DDIMConfig DDIMConfig::from_json(const JsonObject& j) {
  DDIMConfig c;
  read_beta_schedule(j, c.betas);
  c.clip_sample = j.get_bool("clip_sample", c.clip_sample);
  c.clip_sample_range = j.get_float("clip_sample_range", c.clip_sample_range, limits::kPositiveScale);
  c.set_alpha_to_one = j.get_bool("set_alpha_to_one", c.set_alpha_to_one);
  c.steps_offset = j.get_int("steps_offset", c.steps_offset, {0, 1000000, "an offset within the training timesteps"});
  c.prediction_type = j.get_string("prediction_type", c.prediction_type);
  c.timestep_spacing = j.get_string("timestep_spacing", c.timestep_spacing);
  if (j.get_bool("thresholding", false))
    fail(j.source(), ": DDIMScheduler's dynamic thresholding (thresholding: true, for pixel-space models) is not implemented by mmx");
  return c;
}

DDIMScheduler::DDIMScheduler(DDIMConfig config) : config_(std::move(config)) {
  const auto& c = config_;
  require_one_of("DDIMScheduler", "prediction_type", c.prediction_type, {"epsilon", "v_prediction", "sample"});
  require_one_of("DDIMScheduler", "timestep_spacing", c.timestep_spacing, {"leading", "trailing", "linspace"});
  alphas_cumprod_ = schedule_alphas_cumprod(c.betas, "DDIMScheduler", /*finite_last_sigma=*/false);
  final_alpha_cumprod_ = c.set_alpha_to_one ? 1.0f : alphas_cumprod_.front();
}

void DDIMScheduler::set_timesteps(int64_t steps) {
  const int64_t n = config_.betas.num_train_timesteps;
  if (steps < 1 || steps > n)
    usage_error("the number of steps must be between 1 and ", n, " (the scheduler's train timesteps), got ", steps);
  std::vector<int64_t> t;
  if (config_.timestep_spacing == "linspace") {  // np.linspace(0, n - 1, steps).round()[::-1]
    for (double v : numpy_linspace(0, double(n - 1), steps)) t.push_back(int64_t(std::nearbyint(v)));
    std::reverse(t.begin(), t.end());
  } else if (config_.timestep_spacing == "leading") {  // arange(steps) · (n // steps), reversed, + offset
    const int64_t ratio = n / steps;
    for (int64_t i = steps - 1; i >= 0; --i) t.push_back(i * ratio + config_.steps_offset);
  } else {  // trailing: round(arange(n, 0, -n / steps)) − 1
    const double ratio = double(n) / double(steps);
    const int64_t count = int64_t(std::ceil(double(n) / ratio));  // np.arange's length
    for (int64_t i = 0; i < count; ++i) t.push_back(int64_t(std::nearbyint(double(n) + double(i) * -ratio)) - 1);
  }
  for (int64_t v : t)
    if (v < 0 || v >= n) fail("DDIMScheduler: timestep ", v, " is outside 0..", n - 1, " (steps_offset ", config_.steps_offset, ")");
  timesteps_.assign(t.begin(), t.end());
  steps_ = steps;
}

Tensor DDIMScheduler::scale_model_input(const Tensor& sample, int64_t) const { return sample.clone(); }

Tensor DDIMScheduler::step(const Tensor& model_output, int64_t step_index, const Tensor& sample) {
  if (steps_ == 0) fail("DDIMScheduler: set_timesteps must come before step");
  if (step_index < 0 || step_index >= int64_t(timesteps_.size())) fail("DDIMScheduler: step ", step_index, " is out of range");
  if (model_output.dtype() != DType::F32 || sample.dtype() != DType::F32 || model_output.numel() != sample.numel())
    fail("DDIMScheduler: the model output and the sample must be F32 of one size");
  const int64_t t = int64_t(timesteps_[size_t(step_index)]);
  const int64_t prev = t - config_.betas.num_train_timesteps / steps_;
  const float a = alphas_cumprod_[size_t(t)];
  const float a_prev = prev >= 0 ? alphas_cumprod_[size_t(prev)] : final_alpha_cumprod_;
  const float b = 1.0f - a;
  const float sqrt_a = std::sqrt(a), sqrt_b = std::sqrt(b), sqrt_a_prev = std::sqrt(a_prev);
  const float direction = std::sqrt(1.0f - a_prev - 0.0f);  // (1 − ᾱ_prev − σ_t²)^½ with σ_t = eta · … = 0
  const float range = float(config_.clip_sample_range);
  Tensor out = Tensor::empty(sample.shape());
  const float* e = model_output.data<float>();
  const float* x = sample.data<float>();
  float* y = out.data<float>();
  const std::string& kind = config_.prediction_type;
  for (int64_t i = 0; i < sample.numel(); ++i) {
    float x0, eps;
    if (kind == "epsilon") {
      const float scaled = sqrt_b * e[i];
      x0 = (x[i] - scaled) / sqrt_a;
      eps = e[i];
    } else if (kind == "v_prediction") {
      const float p = sqrt_a * x[i], q = sqrt_b * e[i];
      x0 = p - q;
      const float r = sqrt_a * e[i], s = sqrt_b * x[i];
      eps = r + s;
    } else {  // sample
      x0 = e[i];
      const float scaled = sqrt_a * x0;
      eps = (x[i] - scaled) / sqrt_b;
    }
    if (config_.clip_sample) x0 = std::clamp(x0, -range, range);
    const float along = direction * eps;
    const float kept = sqrt_a_prev * x0;
    y[i] = kept + along;
  }
  return out;
}

Tensor DDIMScheduler::add_noise(const Tensor& original, const Tensor& noise, int64_t step_index) const {
  if (step_index < 0 || step_index >= int64_t(timesteps_.size())) fail("DDIMScheduler: step ", step_index, " is out of range");
  if (original.numel() != noise.numel()) fail("DDIMScheduler: add_noise needs a noise of the samples' size");
  const float a = alphas_cumprod_[size_t(timesteps_[size_t(step_index)])];
  const float sqrt_a = std::sqrt(a), sqrt_b = std::sqrt(1.0f - a);
  Tensor out = Tensor::empty(original.shape());
  for (int64_t i = 0; i < out.numel(); ++i) {
    const float p = sqrt_a * original.data<float>()[i], q = sqrt_b * noise.data<float>()[i];
    out.data<float>()[i] = p + q;
  }
  return out;
}

std::unique_ptr<Scheduler> load_ddim(const JsonObject& config) {
  return std::make_unique<DDIMScheduler>(DDIMConfig::from_json(config));
}

}  // namespace mmx
