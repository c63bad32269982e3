// DPMSolverSinglestepScheduler as diffusers 0.30 computes it: 0-d float32 scalars in torch's order
// (-ffp-contract=off), exp/log as torch's SLEEF kernels.
#include "pipelines/schedulers/dpm_solver_singlestep.hpp"

#include <algorithm>
#include <cmath>

#include "core/torch_math.hpp"
#include "mmx/error.hpp"

namespace mmx {
namespace {

constexpr const char* kName = "DPMSolverSinglestepScheduler";

// get_order_list: the order of each step, groups of 1, 2 (, 3) ending in lower orders when asked.
std::vector<int64_t> order_list(int64_t steps, int64_t order, bool lower_order_final) {
  std::vector<int64_t> orders;
  auto repeat = [&](std::initializer_list<int64_t> group, int64_t times) {
    for (int64_t k = 0; k < times; ++k) orders.insert(orders.end(), group);
  };
  if (lower_order_final) {
    if (order == 3) {
      if (steps % 3 == 0) repeat({1, 2, 3}, steps / 3 - 1), repeat({1, 2}, 1), repeat({1}, 1);
      else if (steps % 3 == 1) repeat({1, 2, 3}, steps / 3), repeat({1}, 1);
      else repeat({1, 2, 3}, steps / 3), repeat({1, 2}, 1);
    } else if (order == 2) {
      if (steps % 2 == 0) repeat({1, 2}, steps / 2 - 1), repeat({1, 1}, 1);
      else repeat({1, 2}, steps / 2), repeat({1}, 1);
    } else {
      repeat({1}, steps);
    }
  } else if (order == 3) {
    repeat({1, 2, 3}, steps / 3);
  } else if (order == 2) {
    repeat({1, 2}, steps / 2);
  } else {
    repeat({1}, steps);
  }
  return orders;
}

}  // namespace

DPMSolverSinglestepConfig DPMSolverSinglestepConfig::from_json(const JsonObject& j) {
  DPMSolverSinglestepConfig c;
  read_beta_schedule(j, c.betas);
  c.betas.rescale_betas_zero_snr = false;  // not a setting of this class: from_config drops it
  c.solver_order = j.get_int("solver_order", c.solver_order, {1, 3, "DPM-Solver has orders 1, 2 and 3"});
  c.prediction_type = j.get_string("prediction_type", c.prediction_type);
  c.algorithm_type = j.get_string("algorithm_type", c.algorithm_type);
  if (c.algorithm_type == "deis") c.algorithm_type = "dpmsolver++";
  c.solver_type = j.get_string("solver_type", c.solver_type);
  if (c.solver_type == "logrho" || c.solver_type == "bh1" || c.solver_type == "bh2") c.solver_type = "midpoint";
  c.lower_order_final = j.get_bool("lower_order_final", c.lower_order_final);
  c.use_karras_sigmas = j.get_bool("use_karras_sigmas", c.use_karras_sigmas);
  c.final_sigmas_type = j.get_string("final_sigmas_type", c.final_sigmas_type);
  if (j.has("lambda_min_clipped")) c.lambda_min_clipped = j.get_float("lambda_min_clipped", c.lambda_min_clipped);
  if (j.get_bool("thresholding", false))
    fail(j.source(), ": ", kName, "'s dynamic thresholding (thresholding: true, for pixel-space models) is not implemented by mmx");
  const std::string variance = j.get_string("variance_type", "");
  if (!variance.empty())
    fail(j.source(), ": ", kName, " with variance_type '", variance, "' (a UNet that predicts its variance) is not implemented by mmx");
  return c;
}

DPMSolverSinglestepScheduler::DPMSolverSinglestepScheduler(DPMSolverSinglestepConfig config) : config_(std::move(config)) {
  const auto& c = config_;
  require_one_of(kName, "prediction_type", c.prediction_type, {"epsilon", "sample", "v_prediction"});
  require_one_of(kName, "algorithm_type", c.algorithm_type, {"dpmsolver++", "sde-dpmsolver++", "dpmsolver"});
  require_one_of(kName, "solver_type", c.solver_type, {"midpoint", "heun"});
  require_one_of(kName, "final_sigmas_type", c.final_sigmas_type, {"zero", "sigma_min"});
  if (c.algorithm_type == "dpmsolver" && c.final_sigmas_type == "zero")
    fail(kName, ": final_sigmas_type 'zero' needs algorithm_type dpmsolver++ or sde-dpmsolver++; use 'sigma_min'");
  if (stochastic() && c.solver_order == 3)
    fail(kName, ": solver_order 3 has no SDE update (algorithm_type sde-dpmsolver++); use solver_order 1 or 2");
  alphas_cumprod_ = schedule_alphas_cumprod(c.betas, kName);
  for (float a : alphas_cumprod_) lambdas_.push_back(torch_log(std::sqrt(a)) - torch_log(std::sqrt(1.0f - a)));
}

void DPMSolverSinglestepScheduler::set_timesteps(int64_t steps) {
  auto& c = config_;
  const int64_t n = c.betas.num_train_timesteps;
  check_step_count(steps, n);
  int64_t clipped = 0;
  for (auto it = lambdas_.rbegin(); it != lambdas_.rend() && *it < static_cast<float>(c.lambda_min_clipped); ++it) ++clipped;
  std::vector<double> t = solver_timestep_grid("linspace", n, n - clipped, steps, 0);
  const std::vector<float> full = training_sigmas(alphas_cumprod_);
  std::vector<double> s;
  if (c.use_karras_sigmas) {
    const std::vector<float> log_sigmas = log_of(full);
    s = karras_sigmas(full.front(), full.back(), steps);
    t.clear();
    for (double v : s) t.push_back(std::nearbyint(sigma_to_t(v, log_sigmas)));
  } else {
    for (double v : t) s.push_back(numpy_interp(v, full));
  }
  sigmas_.clear();
  for (double v : s) sigmas_.push_back(static_cast<float>(v));
  sigmas_.push_back(c.final_sigmas_type == "zero" ? 0.0f : full.front());
  timesteps_.assign(t.begin(), t.end());
  // diffusers switches lower_order_final on for good (register_to_config) when the steps do not divide
  // into whole groups, or the last σ is zero.
  if (!c.lower_order_final && (steps % c.solver_order != 0 || c.final_sigmas_type == "zero")) c.lower_order_final = true;
  orders_ = order_list(steps, c.solver_order, c.lower_order_final);
  model_outputs_.clear();
  group_sample_ = Tensor();
  next_step_ = 0;
}

Tensor DPMSolverSinglestepScheduler::scale_model_input(const Tensor& sample, int64_t step_index) const {
  check_step_index(kName, step_index, timesteps_.size());
  return sample.clone();
}

Tensor DPMSolverSinglestepScheduler::update(int64_t i, int64_t order, const Tensor& noise) const {
  const auto& c = config_;
  const Tensor& x = group_sample_;
  const Shape& shape = x.shape();
  const int64_t n = x.numel();
  const float* s = x.data<float>();
  const float* z = noise.defined() ? noise.data<float>() : nullptr;
  const size_t last = model_outputs_.size() - 1;
  const AlphaSigma t = alpha_sigma(sigmas_[size_t(i + 1)]);
  if (order == 1) {
    const AlphaSigma s0 = alpha_sigma(sigmas_[size_t(i)]);
    const float h = t.lambda - s0.lambda;
    const float* m = model_outputs_[last].data<float>();
    if (c.algorithm_type == "dpmsolver++")
      return weighted_sum(shape, {{t.sigma / s0.sigma, s}, {-(t.alpha * (torch_exp(-h) - 1.0f)), m}});
    if (c.algorithm_type == "dpmsolver")
      return weighted_sum(shape, {{t.alpha / s0.alpha, s}, {-(t.sigma * (torch_exp(h) - 1.0f)), m}});
    return weighted_sum(shape, {{t.sigma / s0.sigma * torch_exp(-h), s},
                                {t.alpha * (1.0f - torch_exp(-2.0f * h)), m},
                                {t.sigma * std::sqrt(1.0f - torch_exp(-2.0f * h)), z}});
  }
  const bool midpoint = c.solver_type == "midpoint";
  if (order == 2) {
    const AlphaSigma s0 = alpha_sigma(sigmas_[size_t(i)]), s1 = alpha_sigma(sigmas_[size_t(i - 1)]);
    const float h = t.lambda - s1.lambda, h0 = s0.lambda - s1.lambda, r0 = h0 / h;
    const float* m0 = model_outputs_[last].data<float>();
    const float* m1 = model_outputs_[last - 1].data<float>();  // D0
    std::vector<float> D1(static_cast<size_t>(n));
    for (int64_t k = 0; k < n; ++k) D1[size_t(k)] = 1.0f / r0 * (m0[k] - m1[k]);
    if (c.algorithm_type == "dpmsolver++") {
      const float b = t.alpha * (torch_exp(-h) - 1.0f);
      const float cc = midpoint ? -(0.5f * b) : t.alpha * ((torch_exp(-h) - 1.0f) / h + 1.0f);
      return weighted_sum(shape, {{t.sigma / s1.sigma, s}, {-b, m1}, {cc, D1.data()}});
    }
    if (c.algorithm_type == "dpmsolver") {
      const float b = t.sigma * (torch_exp(h) - 1.0f);
      const float cc = midpoint ? 0.5f * b : t.sigma * ((torch_exp(h) - 1.0f) / h - 1.0f);
      return weighted_sum(shape, {{t.alpha / s1.alpha, s}, {-b, m1}, {-cc, D1.data()}});
    }
    const float b = t.alpha * (1.0f - torch_exp(-2.0f * h));
    const float cc = midpoint ? 0.5f * b : t.alpha * ((1.0f - torch_exp(-2.0f * h)) / (-2.0f * h) + 1.0f);
    return weighted_sum(shape, {{t.sigma / s1.sigma * torch_exp(-h), s}, {b, m1}, {cc, D1.data()},
                                {t.sigma * std::sqrt(1.0f - torch_exp(-2.0f * h)), z}});
  }
  const AlphaSigma s0 = alpha_sigma(sigmas_[size_t(i)]), s1 = alpha_sigma(sigmas_[size_t(i - 1)]),
                   s2 = alpha_sigma(sigmas_[size_t(i - 2)]);
  const float h = t.lambda - s2.lambda, h0 = s0.lambda - s2.lambda, h1 = s1.lambda - s2.lambda;
  const float r0 = h0 / h, r1 = h1 / h;
  const float* m0 = model_outputs_[last].data<float>();
  const float* m1 = model_outputs_[last - 1].data<float>();
  const float* m2 = model_outputs_[last - 2].data<float>();  // D0
  std::vector<float> D1_1(static_cast<size_t>(n)), D1(static_cast<size_t>(n)), D2(static_cast<size_t>(n));
  for (int64_t k = 0; k < n; ++k) {
    const float d10 = 1.0f / r1 * (m1[k] - m2[k]), d11 = 1.0f / r0 * (m0[k] - m2[k]);
    D1_1[size_t(k)] = d11;
    const float p = r0 * d10, q = r1 * d11;
    D1[size_t(k)] = (p - q) / (r0 - r1);
    D2[size_t(k)] = 2.0f * (d11 - d10) / (r0 - r1);
  }
  if (c.algorithm_type == "dpmsolver++") {
    const float a = t.sigma / s2.sigma, b = -(t.alpha * (torch_exp(-h) - 1.0f));
    const float k1 = t.alpha * ((torch_exp(-h) - 1.0f) / h + 1.0f);
    if (midpoint) return weighted_sum(shape, {{a, s}, {b, m2}, {k1, D1_1.data()}});
    return weighted_sum(shape, {{a, s}, {b, m2}, {k1, D1.data()},
                                {-(t.alpha * ((torch_exp(-h) - 1.0f + h) / (h * h) - 0.5f)), D2.data()}});
  }
  const float a = t.alpha / s2.alpha, b = -(t.sigma * (torch_exp(h) - 1.0f));  // dpmsolver
  const float k1 = -(t.sigma * ((torch_exp(h) - 1.0f) / h - 1.0f));
  if (midpoint) return weighted_sum(shape, {{a, s}, {b, m2}, {k1, D1_1.data()}});
  return weighted_sum(shape, {{a, s}, {b, m2}, {k1, D1.data()},
                              {-(t.sigma * ((torch_exp(h) - 1.0f - h) / (h * h) - 0.5f)), D2.data()}});
}

Tensor DPMSolverSinglestepScheduler::step(const Tensor& model_output, int64_t i, const Tensor& sample) {
  const auto& c = config_;
  check_step_index(kName, i, timesteps_.size());
  check_same_shape(kName, model_output, sample);
  f32_elements(kName, model_output, "model output");
  f32_elements(kName, sample, "sample");
  if (!model_outputs_.empty() && i != next_step_)
    fail(kName, ": step ", i, " after step ", next_step_ - 1, "; the steps of a solver come in order");
  const Tensor converted = c.algorithm_type != "dpmsolver" ? to_data_prediction(model_output, sample, sigmas_[size_t(i)], c.prediction_type)
                                                          : to_noise_prediction(model_output, sample, sigmas_[size_t(i)], c.prediction_type);
  model_outputs_.push_back(converted);
  if (static_cast<int64_t>(model_outputs_.size()) > c.solver_order) model_outputs_.erase(model_outputs_.begin());
  const Tensor noise = stochastic() ? draw_noise(model_output.shape()) : Tensor();
  if (i >= static_cast<int64_t>(orders_.size()))
    fail(kName, ": step ", i, " has no order (", orders_.size(), " in the order list)");
  int64_t order = orders_[size_t(i)];
  order = std::min<int64_t>(order, static_cast<int64_t>(model_outputs_.size()));  // diffusers: while outputs[-order] is None
  if (order == 1) group_sample_ = sample.clone();
  if (!group_sample_.defined()) fail(kName, ": step ", i, " continues a group of steps that did not start here");
  Tensor prev = update(i, order, noise);
  next_step_ = i + 1;
  return prev;
}

Tensor DPMSolverSinglestepScheduler::add_noise(const Tensor& original, const Tensor& noise, int64_t step_index) const {
  check_step_index(kName, step_index, timesteps_.size());
  return add_vp_noise(kName, original, noise, sigmas_[size_t(step_index)]);
}

std::unique_ptr<Scheduler> load_dpm_solver_singlestep(const JsonObject& config) {
  return std::make_unique<DPMSolverSinglestepScheduler>(DPMSolverSinglestepConfig::from_json(config));
}

}  // namespace mmx
