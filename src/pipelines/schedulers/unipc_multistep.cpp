// UniPCMultistepScheduler as diffusers 0.30 computes it: float32 0-d scalars in torch's order
// (-ffp-contract=off), the small linear systems of orders 2–3 solved by LU with partial pivoting as
// LAPACK's sgesv does.
#include "pipelines/schedulers/unipc_multistep.hpp"

#include <algorithm>
#include <cmath>

#include "core/torch_math.hpp"
#include "mmx/error.hpp"

namespace mmx {
namespace {

constexpr const char* kName = "UniPCMultistepScheduler";

// torch.linalg.solve(A, b) for n ≤ 3 in float32 as torch 1.13 runs it on a row-major A: LAPACK's LU of
// Aᵀ (partial pivoting, multipliers scaled by the pivot's reciprocal) and getrs with transpose — Uᵀ
// forward, then Lᵀ backward with dot products, then the interchanges undone. Bit for bit for the 2 × 2
// systems of order 2; order 3's 3 × 3 systems differ in the last bits of the coefficients (measured
// in tests/README.md: OpenBLAS's kernels order those dot products their own way).
std::vector<float> solve(const std::vector<std::vector<float>>& A, std::vector<float> b) {
  const size_t n = b.size();
  std::vector<std::vector<float>> a(n, std::vector<float>(n));
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < n; ++j) a[i][j] = A[j][i];
  std::vector<size_t> pivot(n);
  for (size_t j = 0; j < n; ++j) {
    for (size_t i = j; i < n; ++i)
      for (size_t k = 0; k < j; ++k) a[i][j] = a[i][j] - a[i][k] * a[k][j];
    size_t p = j;
    for (size_t i = j + 1; i < n; ++i)
      if (std::fabs(a[i][j]) > std::fabs(a[p][j])) p = i;
    pivot[j] = p;
    std::swap(a[j], a[p]);
    const float r = 1.0f / a[j][j];
    for (size_t i = j + 1; i < n; ++i) a[i][j] *= r;
    for (size_t k = j + 1; k < n; ++k)
      for (size_t m = 0; m < j; ++m) a[j][k] = a[j][k] - a[j][m] * a[m][k];
  }
  auto dot = [](float acc, float x, float y) { return acc + x * y; };
  for (size_t i = 0; i < n; ++i) {  // Uᵀ y = b
    float d = 0;
    for (size_t k = 0; k < i; ++k) d = dot(d, a[k][i], b[k]);
    b[i] = (i > 0 ? b[i] - d : b[i]) / a[i][i];
  }
  for (size_t i = n; i-- > 0;) {  // Lᵀ z = y (unit diagonal)
    float d = 0;
    for (size_t k = i + 1; k < n; ++k) d = dot(d, a[k][i], b[k]);
    if (i + 1 < n) b[i] = b[i] - d;
  }
  for (size_t j = n; j-- > 0;) std::swap(b[j], b[pivot[j]]);
  return b;
}

// The coefficients both halves share: h_phi_1 = e^{hh} − 1, B(h), and R, b of the order-`order` system.
struct UniCoefficients {
  float h_phi_1, B_h;
  std::vector<std::vector<float>> R;
  std::vector<float> b;
};
UniCoefficients coefficients(float hh, const std::vector<float>& rks, int64_t order, bool bh1) {
  UniCoefficients c;
  c.h_phi_1 = torch_expm1(hh);
  float h_phi_k = c.h_phi_1 / hh - 1.0f;
  int64_t factorial = 1;
  c.B_h = bh1 ? hh : torch_expm1(hh);
  for (int64_t i = 1; i <= order; ++i) {
    std::vector<float> row;
    for (float r : rks) row.push_back(i == 1 ? 1.0f : i == 2 ? r : r * r);  // torch.pow(rks, i − 1)
    c.R.push_back(row);
    c.b.push_back(h_phi_k * static_cast<float>(factorial) / c.B_h);
    factorial *= i + 1;
    h_phi_k = h_phi_k / hh - static_cast<float>(1.0 / static_cast<double>(factorial));
  }
  return c;
}

}  // namespace

UniPCMultistepConfig UniPCMultistepConfig::from_json(const JsonObject& j) {
  UniPCMultistepConfig c;
  read_beta_schedule(j, c.betas);
  c.solver_order = j.get_int("solver_order", c.solver_order, {1, 3, "UniPC runs orders 1, 2 and 3"});
  c.prediction_type = j.get_string("prediction_type", c.prediction_type);
  c.predict_x0 = j.get_bool("predict_x0", c.predict_x0);
  c.solver_type = j.get_string("solver_type", c.solver_type);
  if (c.solver_type == "midpoint" || c.solver_type == "heun" || c.solver_type == "logrho") c.solver_type = "bh2";
  c.lower_order_final = j.get_bool("lower_order_final", c.lower_order_final);
  if (j.has("disable_corrector")) {
    const auto& list = j.json().at("disable_corrector");
    if (!list.is_array()) fail(j.source(), ": disable_corrector must be a list of step indices");
    for (const auto& v : list) c.disable_corrector.push_back(j.int_element("disable_corrector", v, {0, 1000000, "a step index"}));
  }
  c.use_karras_sigmas = j.get_bool("use_karras_sigmas", c.use_karras_sigmas);
  c.timestep_spacing = j.get_string("timestep_spacing", c.timestep_spacing);
  c.steps_offset = j.get_int("steps_offset", c.steps_offset, {0, 1000000, "an offset within the training timesteps"});
  c.final_sigmas_type = j.get_string("final_sigmas_type", c.final_sigmas_type);
  if (j.get_bool("thresholding", false))
    fail(j.source(), ": ", kName, "'s dynamic thresholding (thresholding: true, for pixel-space models) is not implemented by mmx");
  return c;
}

UniPCMultistepScheduler::UniPCMultistepScheduler(UniPCMultistepConfig config) : config_(std::move(config)) {
  const auto& c = config_;
  require_one_of(kName, "prediction_type", c.prediction_type, {"epsilon", "sample", "v_prediction"});
  require_one_of(kName, "solver_type", c.solver_type, {"bh1", "bh2"});
  require_one_of(kName, "final_sigmas_type", c.final_sigmas_type, {"zero", "sigma_min"});
  require_one_of(kName, "timestep_spacing", c.timestep_spacing, {"linspace", "leading", "trailing"});
  alphas_cumprod_ = schedule_alphas_cumprod(c.betas, kName);
}

void UniPCMultistepScheduler::set_timesteps(int64_t steps) {
  const auto& c = config_;
  const int64_t n = c.betas.num_train_timesteps;
  check_step_count(steps, n);
  std::vector<double> t = solver_timestep_grid(c.timestep_spacing, n, n, steps, c.steps_offset);
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
  for (double v : t)
    if (v < 0 || v >= static_cast<double>(n))
      fail(kName, ": timestep ", v, " is outside 0..", n - 1, " (steps_offset ", c.steps_offset, ")");
  sigmas_.clear();
  for (double v : s) sigmas_.push_back(static_cast<float>(v));
  const float last = c.use_karras_sigmas ? static_cast<float>(s.back()) : full.front();
  sigmas_.push_back(c.final_sigmas_type == "zero" ? 0.0f : last);
  timesteps_.assign(t.begin(), t.end());
  model_outputs_.clear();
  last_sample_ = Tensor();
  lower_order_nums_ = this_order_ = next_step_ = 0;
}

Tensor UniPCMultistepScheduler::scale_model_input(const Tensor& sample, int64_t step_index) const {
  check_step_index(kName, step_index, timesteps_.size());
  return sample.clone();
}

Tensor UniPCMultistepScheduler::convert_model_output(const Tensor& e, int64_t i, const Tensor& x) const {
  return config_.predict_x0 ? to_data_prediction(e, x, sigmas_[size_t(i)], config_.prediction_type)
                            : to_noise_prediction(e, x, sigmas_[size_t(i)], config_.prediction_type);
}

// The ratios r_k = (λ_{s_k} − λ_{s0}) / h of the steps before `base` and the differences (m_k − m0) / r_k
// of their outputs (the last stored output is m0), then r = 1 appended, as both halves build them.
void UniPCMultistepScheduler::earlier_differences(int64_t base, int64_t order, float h, float lambda_s0, int64_t n,
                                                  std::vector<float>& rks, std::vector<std::vector<float>>& D1s) const {
  const float* m0 = model_outputs_.back().data<float>();
  for (int64_t k = 1; k < order; ++k) {
    const float* mk = model_outputs_[model_outputs_.size() - 1 - size_t(k)].data<float>();
    const float rk = (alpha_sigma(sigmas_[size_t(base - k)]).lambda - lambda_s0) / h;
    rks.push_back(rk);
    std::vector<float> d(static_cast<size_t>(n));
    for (int64_t e = 0; e < n; ++e) d[size_t(e)] = (mk[e] - m0[e]) / rk;
    D1s.push_back(std::move(d));
  }
  rks.push_back(1.0f);
}

Tensor UniPCMultistepScheduler::predict(int64_t i, const Tensor& x, int64_t order) const {
  const AlphaSigma t = alpha_sigma(sigmas_[size_t(i + 1)]), s0 = alpha_sigma(sigmas_[size_t(i)]);
  const float h = t.lambda - s0.lambda;
  const int64_t n = x.numel();
  const float* m0 = model_outputs_.back().data<float>();
  std::vector<float> rks;
  std::vector<std::vector<float>> D1s;
  earlier_differences(i, order, h, s0.lambda, n, rks, D1s);
  const float hh = config_.predict_x0 ? -h : h;
  const UniCoefficients c = coefficients(hh, rks, order, config_.solver_type == "bh1");
  std::vector<float> rhos;
  if (order == 2) {
    rhos = {0.5f};
  } else if (order == 3) {
    std::vector<std::vector<float>> R = {{c.R[0][0], c.R[0][1]}, {c.R[1][0], c.R[1][1]}};
    rhos = solve(R, {c.b[0], c.b[1]});
  }
  const float base = config_.predict_x0 ? t.sigma / s0.sigma : t.alpha / s0.alpha;
  const float scale = config_.predict_x0 ? t.alpha : t.sigma;
  Tensor out = weighted_sum(x.shape(), {{base, x.data<float>()}, {-(scale * c.h_phi_1), m0}});
  if (!D1s.empty()) {
    float* y = out.data<float>();
    const float k = scale * c.B_h;
    for (int64_t e = 0; e < n; ++e) {
      float res = rhos[0] * D1s[0][size_t(e)];  // einsum('k,bkc...->bc...', rhos, D1s)
      for (size_t r = 1; r < D1s.size(); ++r) res = std::fma(rhos[r], D1s[r][size_t(e)], res);
      y[e] = y[e] - k * res;
    }
  }
  return out;
}

Tensor UniPCMultistepScheduler::correct(int64_t i, const Tensor& model_t, int64_t order) const {
  const Tensor& x = last_sample_;
  const AlphaSigma t = alpha_sigma(sigmas_[size_t(i)]), s0 = alpha_sigma(sigmas_[size_t(i - 1)]);
  const float h = t.lambda - s0.lambda;
  const int64_t n = x.numel();
  const float* m0 = model_outputs_.back().data<float>();
  std::vector<float> rks;
  std::vector<std::vector<float>> D1s;
  earlier_differences(i - 1, order, h, s0.lambda, n, rks, D1s);
  const float hh = config_.predict_x0 ? -h : h;
  const UniCoefficients c = coefficients(hh, rks, order, config_.solver_type == "bh1");
  const std::vector<float> rhos = order == 1 ? std::vector<float>{0.5f} : solve(c.R, c.b);
  const float base = config_.predict_x0 ? t.sigma / s0.sigma : t.alpha / s0.alpha;
  const float scale = config_.predict_x0 ? t.alpha : t.sigma;
  Tensor out = weighted_sum(x.shape(), {{base, x.data<float>()}, {-(scale * c.h_phi_1), m0}});
  float* y = out.data<float>();
  const float* mt = model_t.data<float>();
  const float k = scale * c.B_h;
  for (int64_t e = 0; e < n; ++e) {
    const float d1_t = mt[e] - m0[e];
    const float last = rhos.back() * d1_t;
    float total = last;
    if (!D1s.empty()) {
      float res = rhos[0] * D1s[0][size_t(e)];
      for (size_t r = 1; r < D1s.size(); ++r) res = std::fma(rhos[r], D1s[r][size_t(e)], res);
      total = res + last;
    }
    y[e] = y[e] - k * total;
  }
  return out;
}

Tensor UniPCMultistepScheduler::step(const Tensor& model_output, int64_t i, const Tensor& sample) {
  const auto& c = config_;
  check_step_index(kName, i, timesteps_.size());
  check_same_shape(kName, model_output, sample);
  f32_elements(kName, model_output, "model output");
  f32_elements(kName, sample, "sample");
  if (!model_outputs_.empty() && i != next_step_)
    fail(kName, ": step ", i, " after step ", next_step_ - 1, "; the steps of a multistep solver come in order");
  const bool use_corrector = i > 0 && last_sample_.defined() &&
                             std::find(c.disable_corrector.begin(), c.disable_corrector.end(), i - 1) == c.disable_corrector.end();
  const Tensor converted = convert_model_output(model_output, i, sample);
  const Tensor corrected = use_corrector ? correct(i, converted, this_order_) : sample.clone();
  model_outputs_.push_back(converted);
  if (static_cast<int64_t>(model_outputs_.size()) > c.solver_order) model_outputs_.erase(model_outputs_.begin());
  const int64_t count = static_cast<int64_t>(timesteps_.size());
  const int64_t order = c.lower_order_final ? std::min(c.solver_order, count - i) : c.solver_order;
  this_order_ = std::min(order, lower_order_nums_ + 1);
  last_sample_ = corrected;
  Tensor prev = predict(i, corrected, this_order_);
  lower_order_nums_ = std::min(lower_order_nums_ + 1, c.solver_order);
  next_step_ = i + 1;
  return prev;
}

Tensor UniPCMultistepScheduler::add_noise(const Tensor& original, const Tensor& noise, int64_t step_index) const {
  check_step_index(kName, step_index, timesteps_.size());
  return add_vp_noise(kName, original, noise, sigmas_[size_t(step_index)]);
}

std::unique_ptr<Scheduler> load_unipc_multistep(const JsonObject& config) {
  return std::make_unique<UniPCMultistepScheduler>(UniPCMultistepConfig::from_json(config));
}

}  // namespace mmx
