// DPMSolverMultistepScheduler as diffusers 0.30 computes it: the timestep grid in numpy's float64 and
// rounding, σ (and the Karras / λ-uniform schedules) in float64 stored as float32, and each update with
// 0-d float32 scalars in torch's order (this file is compiled with -ffp-contract=off).
#include "pipelines/schedulers/dpm_solver_multistep.hpp"

#include <algorithm>
#include <cmath>

#include "core/torch_math.hpp"
#include "mmx/error.hpp"

namespace mmx {
namespace {

constexpr const char* kName = "DPMSolverMultistepScheduler";

}  // namespace

DPMSolverMultistepConfig DPMSolverMultistepConfig::from_json(const JsonObject& j) {
  DPMSolverMultistepConfig c;
  read_beta_schedule(j, c.betas);
  c.solver_order = j.get_int("solver_order", c.solver_order, {1, 3, "DPM-Solver has orders 1, 2 and 3"});
  c.prediction_type = j.get_string("prediction_type", c.prediction_type);
  c.algorithm_type = j.get_string("algorithm_type", c.algorithm_type);
  if (c.algorithm_type == "deis") c.algorithm_type = "dpmsolver++";
  c.solver_type = j.get_string("solver_type", c.solver_type);
  if (c.solver_type == "logrho" || c.solver_type == "bh1" || c.solver_type == "bh2") c.solver_type = "midpoint";
  c.lower_order_final = j.get_bool("lower_order_final", c.lower_order_final);
  c.euler_at_final = j.get_bool("euler_at_final", c.euler_at_final);
  c.use_karras_sigmas = j.get_bool("use_karras_sigmas", c.use_karras_sigmas);
  c.use_lu_lambdas = j.get_bool("use_lu_lambdas", c.use_lu_lambdas);
  c.final_sigmas_type = j.get_string("final_sigmas_type", c.final_sigmas_type);
  if (j.has("lambda_min_clipped")) c.lambda_min_clipped = j.get_float("lambda_min_clipped", c.lambda_min_clipped);
  c.timestep_spacing = j.get_string("timestep_spacing", c.timestep_spacing);
  c.steps_offset = j.get_int("steps_offset", c.steps_offset, {0, 1000000, "an offset within the training timesteps"});
  if (j.get_bool("thresholding", false))
    fail(j.source(), ": ", kName, "'s dynamic thresholding (thresholding: true, for pixel-space models) is not implemented by mmx");
  const std::string variance = j.get_string("variance_type", "");
  if (!variance.empty())
    fail(j.source(), ": ", kName, " with variance_type '", variance, "' (a UNet that predicts its variance, as DeepFloyd IF's) "
         "is not implemented by mmx");
  return c;
}

DPMSolverMultistepScheduler::DPMSolverMultistepScheduler(DPMSolverMultistepConfig config) : config_(std::move(config)) {
  const auto& c = config_;
  require_one_of(kName, "prediction_type", c.prediction_type, {"epsilon", "sample", "v_prediction"});
  require_one_of(kName, "algorithm_type", c.algorithm_type, {"dpmsolver++", "sde-dpmsolver++", "dpmsolver", "sde-dpmsolver"});
  require_one_of(kName, "solver_type", c.solver_type, {"midpoint", "heun"});
  require_one_of(kName, "final_sigmas_type", c.final_sigmas_type, {"zero", "sigma_min"});
  require_one_of(kName, "timestep_spacing", c.timestep_spacing, {"linspace", "leading", "trailing"});
  const bool data_prediction = c.algorithm_type == "dpmsolver++" || c.algorithm_type == "sde-dpmsolver++";
  if (!data_prediction && c.final_sigmas_type == "zero")
    fail(kName, ": final_sigmas_type 'zero' needs algorithm_type dpmsolver++ or sde-dpmsolver++ (", c.algorithm_type,
         " divides by the final σ); use final_sigmas_type 'sigma_min'");
  if (stochastic() && c.solver_order == 3)
    fail(kName, ": solver_order 3 has no SDE update (algorithm_type ", c.algorithm_type, "); use solver_order 1 or 2");
  alphas_cumprod_ = schedule_alphas_cumprod(c.betas, kName);
  for (float a : alphas_cumprod_) lambdas_.push_back(torch_log(std::sqrt(a)) - torch_log(std::sqrt(1.0f - a)));
}

bool DPMSolverMultistepScheduler::stochastic() const {
  return config_.algorithm_type == "sde-dpmsolver++" || config_.algorithm_type == "sde-dpmsolver";
}

void DPMSolverMultistepScheduler::set_timesteps(int64_t steps) {
  const auto& c = config_;
  const int64_t n = c.betas.num_train_timesteps;
  check_step_count(steps, n);
  // The timesteps whose λ is below lambda_min_clipped are cut from the top (searchsorted on the
  // ascending λs).
  int64_t clipped = 0;
  for (auto it = lambdas_.rbegin(); it != lambdas_.rend() && *it < static_cast<float>(c.lambda_min_clipped); ++it) ++clipped;
  const int64_t last = n - clipped;
  std::vector<double> t = solver_timestep_grid(c.timestep_spacing, n, last, steps, c.steps_offset);
  const std::vector<float> full = training_sigmas(alphas_cumprod_), log_sigmas = log_of(full);
  std::vector<double> s;
  if (c.use_karras_sigmas) {
    s = karras_sigmas(full.front(), full.back(), steps);
    t.clear();
    for (double v : s) t.push_back(std::nearbyint(sigma_to_t(v, log_sigmas)));
  } else if (c.use_lu_lambdas) {  // uniform in log σ between the schedule's ends, as diffusers' _convert_to_lu
    const double lo = log_sigmas.front(), hi = log_sigmas.back();
    t.clear();
    for (double r : numpy_linspace(0, 1, steps)) {
      s.push_back(std::exp(hi + r * (lo - hi)));
      t.push_back(std::nearbyint(sigma_to_t(s.back(), log_sigmas)));
    }
  } else {
    for (double v : t) s.push_back(numpy_interp(v, full));
  }
  for (double v : t)
    if (v < 0 || v >= static_cast<double>(n))
      fail(kName, ": timestep ", v, " is outside 0..", n - 1, " (steps_offset ", c.steps_offset, ")");
  sigmas_.clear();
  for (double v : s) sigmas_.push_back(static_cast<float>(v));
  sigmas_.push_back(c.final_sigmas_type == "zero" ? 0.0f : full.front());
  timesteps_.assign(t.begin(), t.end());
  model_outputs_.clear();
  lower_order_nums_ = next_step_ = 0;
}

Tensor DPMSolverMultistepScheduler::scale_model_input(const Tensor& sample, int64_t step_index) const {
  check_step_index(kName, step_index, timesteps_.size());
  return sample.clone();
}

Tensor DPMSolverMultistepScheduler::convert_model_output(const Tensor& e, int64_t i, const Tensor& x) const {
  const bool data = config_.algorithm_type == "dpmsolver++" || config_.algorithm_type == "sde-dpmsolver++";
  return data ? to_data_prediction(e, x, sigmas_[size_t(i)], config_.prediction_type)
              : to_noise_prediction(e, x, sigmas_[size_t(i)], config_.prediction_type);
}

Tensor DPMSolverMultistepScheduler::first_order(int64_t i, const Tensor& x, const Tensor& noise) const {
  const AlphaSigma t = alpha_sigma(sigmas_[size_t(i + 1)]), s0 = alpha_sigma(sigmas_[size_t(i)]);
  const float h = t.lambda - s0.lambda;
  const float* m = model_outputs_.back().data<float>();
  const float* s = x.data<float>();
  const float* z = noise.defined() ? noise.data<float>() : nullptr;
  const Shape& shape = x.shape();
  const std::string& algorithm = config_.algorithm_type;
  if (algorithm == "dpmsolver++")
    return weighted_sum(shape, {{t.sigma / s0.sigma, s}, {-(t.alpha * (torch_exp(-h) - 1.0f)), m}});
  if (algorithm == "dpmsolver")
    return weighted_sum(shape, {{t.alpha / s0.alpha, s}, {-(t.sigma * (torch_exp(h) - 1.0f)), m}});
  if (algorithm == "sde-dpmsolver++")
    return weighted_sum(shape, {{t.sigma / s0.sigma * torch_exp(-h), s},
                                {t.alpha * (1.0f - torch_exp(-2.0f * h)), m},
                                {t.sigma * std::sqrt(1.0f - torch_exp(-2.0f * h)), z}});
  return weighted_sum(shape, {{t.alpha / s0.alpha, s},  // sde-dpmsolver
                              {-(2.0f * (t.sigma * (torch_exp(h) - 1.0f))), m},
                              {t.sigma * std::sqrt(torch_exp(2.0f * h) - 1.0f), z}});
}

Tensor DPMSolverMultistepScheduler::second_order(int64_t i, const Tensor& x, const Tensor& noise) const {
  const AlphaSigma t = alpha_sigma(sigmas_[size_t(i + 1)]), s0 = alpha_sigma(sigmas_[size_t(i)]),
                   s1 = alpha_sigma(sigmas_[size_t(i - 1)]);
  const float h = t.lambda - s0.lambda, h0 = s0.lambda - s1.lambda;
  const float r0 = h0 / h;
  const Tensor& m0 = model_outputs_[model_outputs_.size() - 1];
  const Tensor& m1 = model_outputs_[model_outputs_.size() - 2];
  const Tensor d1 = weighted_sum(x.shape(), {{1.0f, m0.data<float>()}, {-1.0f, m1.data<float>()}});  // m0 − m1
  Tensor D1 = Tensor::empty(x.shape());
  for (int64_t k = 0; k < x.numel(); ++k) D1.data<float>()[k] = 1.0f / r0 * d1.data<float>()[k];
  const float* s = x.data<float>();
  const float* D0 = m0.data<float>();
  const float* D1p = D1.data<float>();
  const float* z = noise.defined() ? noise.data<float>() : nullptr;
  const Shape& shape = x.shape();
  const bool midpoint = config_.solver_type == "midpoint";
  const std::string& algorithm = config_.algorithm_type;
  if (algorithm == "dpmsolver++") {
    const float b = t.alpha * (torch_exp(-h) - 1.0f);
    const float c = midpoint ? -(0.5f * b) : t.alpha * ((torch_exp(-h) - 1.0f) / h + 1.0f);
    return weighted_sum(shape, {{t.sigma / s0.sigma, s}, {-b, D0}, {c, D1p}});
  }
  if (algorithm == "dpmsolver") {
    const float b = t.sigma * (torch_exp(h) - 1.0f);
    const float c = midpoint ? 0.5f * b : t.sigma * ((torch_exp(h) - 1.0f) / h - 1.0f);
    return weighted_sum(shape, {{t.alpha / s0.alpha, s}, {-b, D0}, {-c, D1p}});
  }
  if (algorithm == "sde-dpmsolver++") {
    const float b = t.alpha * (1.0f - torch_exp(-2.0f * h));
    const float c = midpoint ? 0.5f * b : t.alpha * ((1.0f - torch_exp(-2.0f * h)) / (-2.0f * h) + 1.0f);
    return weighted_sum(shape, {{t.sigma / s0.sigma * torch_exp(-h), s}, {b, D0}, {c, D1p},
                                {t.sigma * std::sqrt(1.0f - torch_exp(-2.0f * h)), z}});
  }
  const float b = 2.0f * (t.sigma * (torch_exp(h) - 1.0f));  // sde-dpmsolver
  const float c = midpoint ? t.sigma * (torch_exp(h) - 1.0f) : 2.0f * (t.sigma * ((torch_exp(h) - 1.0f) / h - 1.0f));
  return weighted_sum(shape, {{t.alpha / s0.alpha, s}, {-b, D0}, {-c, D1p},
                              {t.sigma * std::sqrt(torch_exp(2.0f * h) - 1.0f), z}});
}

Tensor DPMSolverMultistepScheduler::third_order(int64_t i, const Tensor& x) const {
  const AlphaSigma t = alpha_sigma(sigmas_[size_t(i + 1)]), s0 = alpha_sigma(sigmas_[size_t(i)]),
                   s1 = alpha_sigma(sigmas_[size_t(i - 1)]), s2 = alpha_sigma(sigmas_[size_t(i - 2)]);
  const float h = t.lambda - s0.lambda, h0 = s0.lambda - s1.lambda, h1 = s1.lambda - s2.lambda;
  const float r0 = h0 / h, r1 = h1 / h;
  const size_t last = model_outputs_.size() - 1;
  const float* m0 = model_outputs_[last].data<float>();
  const float* m1 = model_outputs_[last - 1].data<float>();
  const float* m2 = model_outputs_[last - 2].data<float>();
  const int64_t n = x.numel();
  std::vector<float> D1(static_cast<size_t>(n)), D2(static_cast<size_t>(n));
  const float k1 = r0 / (r0 + r1), k2 = 1.0f / (r0 + r1);
  for (int64_t k = 0; k < n; ++k) {
    const float d10 = 1.0f / r0 * (m0[k] - m1[k]), d11 = 1.0f / r1 * (m1[k] - m2[k]);
    const float diff = d10 - d11;
    D1[size_t(k)] = d10 + k1 * diff;
    D2[size_t(k)] = k2 * diff;
  }
  const float* s = x.data<float>();
  if (config_.algorithm_type == "dpmsolver++")
    return weighted_sum(x.shape(), {{t.sigma / s0.sigma, s},
                                    {-(t.alpha * (torch_exp(-h) - 1.0f)), m0},
                                    {t.alpha * ((torch_exp(-h) - 1.0f) / h + 1.0f), D1.data()},
                                    {-(t.alpha * ((torch_exp(-h) - 1.0f + h) / (h * h) - 0.5f)), D2.data()}});
  return weighted_sum(x.shape(), {{t.alpha / s0.alpha, s},  // dpmsolver
                                  {-(t.sigma * (torch_exp(h) - 1.0f)), m0},
                                  {-(t.sigma * ((torch_exp(h) - 1.0f) / h - 1.0f)), D1.data()},
                                  {-(t.sigma * ((torch_exp(h) - 1.0f - h) / (h * h) - 0.5f)), D2.data()}});
}

Tensor DPMSolverMultistepScheduler::step(const Tensor& model_output, int64_t i, const Tensor& sample) {
  const auto& c = config_;
  check_step_index(kName, i, timesteps_.size());
  check_same_shape(kName, model_output, sample);
  f32_elements(kName, model_output, "model output");
  f32_elements(kName, sample, "sample");
  // A multistep solver reuses the outputs of the steps before: they come in order (an image-to-image
  // loop may start anywhere).
  if (!model_outputs_.empty() && i != next_step_)
    fail(kName, ": step ", i, " after step ", next_step_ - 1, "; the steps of a multistep solver come in order");
  const int64_t count = static_cast<int64_t>(timesteps_.size());
  const bool lower_order_final =
      i == count - 1 && (c.euler_at_final || (c.lower_order_final && count < 15) || c.final_sigmas_type == "zero");
  const bool lower_order_second = i == count - 2 && c.lower_order_final && count < 15;
  model_outputs_.push_back(convert_model_output(model_output, i, sample));
  if (static_cast<int64_t>(model_outputs_.size()) > c.solver_order) model_outputs_.erase(model_outputs_.begin());
  const Tensor noise = stochastic() ? draw_noise(model_output.shape()) : Tensor();
  Tensor prev;
  if (c.solver_order == 1 || lower_order_nums_ < 1 || lower_order_final)
    prev = first_order(i, sample, noise);
  else if (c.solver_order == 2 || lower_order_nums_ < 2 || lower_order_second)
    prev = second_order(i, sample, noise);
  else
    prev = third_order(i, sample);
  lower_order_nums_ = std::min(lower_order_nums_ + 1, c.solver_order);
  next_step_ = i + 1;
  return prev;
}

Tensor DPMSolverMultistepScheduler::add_noise(const Tensor& original, const Tensor& noise, int64_t step_index) const {
  check_step_index(kName, step_index, timesteps_.size());
  return add_vp_noise(kName, original, noise, sigmas_[size_t(step_index)]);
}

std::unique_ptr<Scheduler> load_dpm_solver_multistep(const JsonObject& config) {
  return std::make_unique<DPMSolverMultistepScheduler>(DPMSolverMultistepConfig::from_json(config));
}

}  // namespace mmx
