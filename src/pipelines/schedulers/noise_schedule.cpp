// The training noise schedule (noise_schedule.hpp), computed in torch's and numpy's own arithmetic.
// Compiled with -ffp-contract=off: only the explicit fused multiply-adds of torch's kernels are fused.
#include "pipelines/schedulers/noise_schedule.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "core/torch_math.hpp"
#include "mmx/error.hpp"

namespace mmx {

// torch.linspace(start, end, n, dtype=float32) as torch 1.13's CPU kernel computes it with AVX2 (the
// Debian build that made the fixtures; checked value for value): a float step; vectors of 8 counted up
// by `step` from a base, the base start + step·i in the first half and end − step·(n − 1 − i) in the
// second, with fused multiply-adds (the kernel is compiled with contraction); 16 values per round, the
// rest one by one with the same formulas. Plain scalar arithmetic differs in 272 of SDXL's 1000 betas.
std::vector<float> torch_linspace(float start, float end, int64_t n) {
  std::vector<float> v(static_cast<size_t>(n));
  if (n == 1) {
    v[0] = start;
    return v;
  }
  const float step = (end - start) / static_cast<float>(n - 1);
  const int64_t halfway = n / 2;
  auto at = [&](int64_t i) {
    return i < halfway ? std::fma(step, static_cast<float>(i), start) : std::fma(-step, static_cast<float>(n - i - 1), end);
  };
  constexpr int64_t kLanes = 8;
  int64_t i = 0;
  for (; i + 2 * kLanes <= n; i += 2 * kLanes)
    for (int64_t lane0 = i; lane0 < i + 2 * kLanes; lane0 += kLanes) {
      const float base = at(lane0);
      for (int64_t k = 0; k < kLanes; ++k) v[size_t(lane0 + k)] = std::fma(static_cast<float>(k), step, base);
    }
  for (; i < n; ++i) v[size_t(i)] = at(i);
  return v;
}

// numpy.linspace(start, stop, n) in float64: i·step + start, the last value exactly stop.
std::vector<double> numpy_linspace(double start, double stop, int64_t n) {
  std::vector<double> v(static_cast<size_t>(n));
  const double step = n > 1 ? (stop - start) / static_cast<double>(n - 1) : 0;
  for (int64_t i = 0; i < n; ++i) v[size_t(i)] = static_cast<double>(i) * step + start;
  if (n > 1) v.back() = stop;
  return v;
}

std::vector<float> torch_cumprod(const std::vector<float>& x) {
  std::vector<float> out(x.size());
  double acc = 1.0;
  for (size_t i = 0; i < x.size(); ++i) out[i] = static_cast<float>(acc *= x[i]);
  return out;
}

namespace {
// diffusers' rescale_zero_terminal_snr (arXiv 2305.08891, Algorithm 1), in float32.
std::vector<float> rescale_zero_terminal_snr(const std::vector<float>& betas) {
  std::vector<float> alphas(betas.size());
  for (size_t i = 0; i < betas.size(); ++i) alphas[i] = 1.0f - betas[i];
  std::vector<float> s = torch_cumprod(alphas);
  for (float& v : s) v = std::sqrt(v);
  const float s0 = s.front(), st = s.back();
  for (float& v : s) v = (v - st) * (s0 / (s0 - st));
  std::vector<float> bar(s.size()), out(s.size());
  for (size_t i = 0; i < s.size(); ++i) bar[i] = s[i] * s[i];
  for (size_t i = 0; i < s.size(); ++i) out[i] = 1.0f - (i == 0 ? bar[0] : bar[i] / bar[i - 1]);
  return out;
}

}  // namespace

std::vector<float> schedule_betas(const BetaSchedule& c, const char* class_name) {
  const int64_t n = c.num_train_timesteps;
  std::vector<float> betas;
  if (!c.trained_betas.empty()) {
    for (double b : c.trained_betas) betas.push_back(static_cast<float>(b));
  } else if (c.beta_schedule == "linear") {
    betas = torch_linspace(static_cast<float>(c.beta_start), static_cast<float>(c.beta_end), n);
  } else if (c.beta_schedule == "scaled_linear") {  // linear in sqrt(beta): the latent-diffusion schedule
    betas = torch_linspace(static_cast<float>(std::sqrt(c.beta_start)), static_cast<float>(std::sqrt(c.beta_end)), n);
    for (float& b : betas) b = b * b;
  } else if (c.beta_schedule == "squaredcos_cap_v2") {  // GLIDE's cosine schedule, capped at 0.999
    auto alpha_bar = [](double t) {
      const double v = std::cos((t + 0.008) / 1.008 * std::numbers::pi / 2);
      return v * v;
    };
    for (int64_t i = 0; i < n; ++i)
      betas.push_back(static_cast<float>(
          std::min(1 - alpha_bar(double(i + 1) / double(n)) / alpha_bar(double(i) / double(n)), 0.999)));
  } else {
    fail(class_name, ": beta_schedule '", c.beta_schedule,
         "' is not supported (linear, scaled_linear, squaredcos_cap_v2)");
  }
  if (c.rescale_betas_zero_snr) betas = rescale_zero_terminal_snr(betas);
  return betas;
}

std::vector<float> schedule_alphas_cumprod(const BetaSchedule& schedule, const char* class_name, bool finite_last_sigma) {
  check_train_timesteps(schedule, class_name);
  std::vector<float> alphas = schedule_betas(schedule, class_name);
  for (float& a : alphas) a = 1.0f - a;
  std::vector<float> cumprod = torch_cumprod(alphas);
  if (schedule.rescale_betas_zero_snr && finite_last_sigma) cumprod.back() = std::ldexp(1.0f, -24);
  return cumprod;
}

std::vector<float> training_sigmas(const std::vector<float>& alphas_cumprod) {
  std::vector<float> sigmas(alphas_cumprod.size());
  for (size_t i = 0; i < sigmas.size(); ++i) sigmas[i] = std::sqrt((1.0f - alphas_cumprod[i]) / alphas_cumprod[i]);
  return sigmas;
}

std::vector<float> log_of(const std::vector<float>& x) {
  std::vector<float> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = std::log(x[i]);
  return y;
}

std::vector<double> float_timestep_grid(const std::string& spacing, int64_t n_train, int64_t steps, int64_t steps_offset) {
  std::vector<double> t;
  if (spacing == "linspace") {  // np.linspace(0, n − 1, steps, dtype=float32)[::-1]
    for (double v : numpy_linspace(0, static_cast<double>(n_train - 1), steps)) t.push_back(static_cast<float>(v));
    std::reverse(t.begin(), t.end());
  } else if (spacing == "leading") {  // arange(steps) · (n // steps), reversed, + offset (in float32)
    const int64_t ratio = n_train / steps;
    for (int64_t i = steps - 1; i >= 0; --i)
      t.push_back(static_cast<float>(static_cast<float>(i * ratio) + static_cast<float>(steps_offset)));
  } else {  // trailing: numpy.arange(n, 0, −n / steps) rounded half to even, minus one
    const double ratio = static_cast<double>(n_train) / static_cast<double>(steps);
    const double start = static_cast<double>(n_train), delta = (start - ratio) - start;
    const int64_t len = static_cast<int64_t>(std::ceil((0 - start) / -ratio));
    for (int64_t i = 0; i < len; ++i)
      t.push_back(static_cast<float>(static_cast<float>(std::nearbyint(start + static_cast<double>(i) * delta)) - 1.0f));
  }
  return t;
}

std::vector<double> solver_timestep_grid(const std::string& spacing, int64_t n, int64_t last, int64_t steps,
                                         int64_t steps_offset) {
  std::vector<double> t;
  if (spacing == "linspace") {  // linspace(0, last − 1, steps + 1).round()[::-1][:-1]
    const std::vector<double> grid = numpy_linspace(0, static_cast<double>(last - 1), steps + 1);
    for (int64_t i = steps; i >= 1; --i) t.push_back(std::nearbyint(grid[size_t(i)]));
  } else if (spacing == "leading") {  // (arange(steps + 1) · (last // (steps + 1)))[::-1][:-1] + offset
    const int64_t ratio = last / (steps + 1);
    for (int64_t i = steps; i >= 1; --i) t.push_back(static_cast<double>(i * ratio + steps_offset));
  } else {  // trailing: numpy.arange(last, 0, −n / steps) rounded half to even, minus one
    const double start = static_cast<double>(last), ratio = static_cast<double>(n) / static_cast<double>(steps);
    const double delta = (start - ratio) - start;
    const int64_t len = static_cast<int64_t>(std::ceil(start / ratio));
    for (int64_t i = 0; i < len; ++i) t.push_back(std::nearbyint(start + static_cast<double>(i) * delta) - 1);
  }
  return t;
}

std::vector<double> consistency_timesteps(int64_t n, int64_t original, int64_t steps, const char* class_name) {
  if (original > n) fail(class_name, ": original_inference_steps ", original, " exceeds the ", n, " train timesteps");
  check_step_count(steps, n);
  if (steps > original)
    usage_error(class_name, " takes at most original_inference_steps = ", original, " steps (its distillation schedule), got ", steps);
  const int64_t k = n / original;
  std::vector<double> origin;  // reversed: k·original − 1 down to k − 1
  for (int64_t i = original; i >= 1; --i) origin.push_back(static_cast<double>(i * k - 1));
  const double step = static_cast<double>(origin.size()) / static_cast<double>(steps);
  std::vector<double> t;
  for (int64_t i = 0; i < steps; ++i) t.push_back(origin[size_t(std::floor(static_cast<double>(i) * step))]);
  return t;
}

void k_diffusion_schedule(const std::string& spacing, int64_t n, int64_t steps, int64_t offset,
                          const std::vector<float>& alphas_cumprod, bool karras, std::vector<double>& t,
                          std::vector<double>& s) {
  t = float_timestep_grid(spacing, n, steps, offset);
  const std::vector<float> full = training_sigmas(alphas_cumprod);
  s.clear();
  for (double v : t) s.push_back(numpy_interp(v, full));
  if (!karras) return;
  const std::vector<float> log_sigmas = log_of(full);
  s = karras_sigmas(s.back(), s.front(), steps);
  t.clear();
  for (double v : s) t.push_back(sigma_to_t(v, log_sigmas));
}

double numpy_interp(double x, const std::vector<float>& fp) {
  const int64_t n = static_cast<int64_t>(fp.size());
  if (x <= 0) return fp.front();
  if (x >= static_cast<double>(n - 1)) return fp.back();
  const int64_t j = static_cast<int64_t>(std::floor(x));
  if (x == static_cast<double>(j)) return fp[size_t(j)];
  const double slope = double(fp[size_t(j + 1)]) - double(fp[size_t(j)]);  // the grid step is 1
  return slope * (x - static_cast<double>(j)) + fp[size_t(j)];
}

double sigma_to_t(double sigma, const std::vector<float>& log_sigmas) {
  const double log_sigma = std::log(std::max(sigma, 1e-10));
  const int64_t n = static_cast<int64_t>(log_sigmas.size());
  int64_t low = 0;  // the last index whose log σ is ≤ log_sigma (argmax of the cumulative count)
  int64_t count = 0, best = -1;
  for (int64_t i = 0; i < n; ++i) {
    count += log_sigma - log_sigmas[size_t(i)] >= 0;
    if (count > best) best = count, low = i;
  }
  low = std::min(low, n - 2);
  const float lo = log_sigmas[size_t(low)], hi = log_sigmas[size_t(low + 1)];
  const double w = std::clamp((lo - log_sigma) / static_cast<double>(lo - hi), 0.0, 1.0);
  return (1 - w) * static_cast<double>(low) + w * static_cast<double>(low + 1);
}

std::vector<double> karras_sigmas(double sigma_min, double sigma_max, int64_t steps) {
  const double rho = 7.0;
  const double min_inv = std::pow(sigma_min, 1 / rho), max_inv = std::pow(sigma_max, 1 / rho);
  std::vector<double> s;
  for (double r : numpy_linspace(0, 1, steps)) s.push_back(std::pow(max_inv + r * (min_inv - max_inv), rho));
  return s;
}

AlphaSigma alpha_sigma(float s) {
  const float alpha = 1.0f / std::sqrt(s * s + 1.0f);
  const float sigma = s * alpha;
  return {alpha, sigma, torch_log(alpha) - torch_log(sigma)};
}

void check_step_count(int64_t steps, int64_t n_train) {
  if (steps < 1 || steps > n_train)
    usage_error("the number of steps must be between 1 and ", n_train, " (the scheduler's train timesteps), got ", steps);
}

void check_train_timesteps(const BetaSchedule& c, const char* class_name) {
  if (c.num_train_timesteps < 2) fail(class_name, ": num_train_timesteps must be at least 2, got ", c.num_train_timesteps);
  if (!c.trained_betas.empty() && int64_t(c.trained_betas.size()) != c.num_train_timesteps)
    fail(class_name, ": ", c.trained_betas.size(), " trained_betas for ", c.num_train_timesteps, " train timesteps");
}

void check_step_index(const std::string& class_name, int64_t step_index, size_t steps) {
  if (steps == 0) fail(class_name, ": set_timesteps must come before the steps");
  if (step_index < 0 || step_index >= static_cast<int64_t>(steps))
    fail(class_name, ": step ", step_index, " is outside the ", steps, " steps set");
}

void check_same_shape(const std::string& class_name, const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape())
    fail(class_name, ": tensors of shapes ", shape_str(a.shape()), " and ", shape_str(b.shape()), " where one shape is needed");
}

const float* f32_elements(const std::string& class_name, const Tensor& t, const char* what) {
  if (t.dtype() != DType::F32) fail(class_name, ": the ", what, " must be F32, got ", dtype_name(t.dtype()));
  return t.data<float>();
}

Tensor scale_by_sigma(const std::string& class_name, const Tensor& sample, float sigma) {
  const float scale = std::sqrt(sigma * sigma + 1.0f);
  const float* x = f32_elements(class_name, sample, "sample");
  Tensor out = Tensor::empty(sample.shape());
  for (int64_t i = 0; i < sample.numel(); ++i) out.data<float>()[i] = x[i] / scale;
  return out;
}

Tensor add_sigma_noise(const std::string& class_name, const Tensor& original, const Tensor& noise, float sigma) {
  check_same_shape(class_name, original, noise);
  const float* x = f32_elements(class_name, original, "original samples");
  const float* e = f32_elements(class_name, noise, "noise");
  Tensor out = Tensor::empty(original.shape());
  for (int64_t i = 0; i < out.numel(); ++i) {
    const float scaled = e[i] * sigma;
    out.data<float>()[i] = x[i] + scaled;
  }
  return out;
}

float sigma_init_noise(const std::string& class_name, const std::vector<float>& sigmas, const std::string& spacing) {
  if (sigmas.empty()) fail(class_name, ": set_timesteps first");
  const float max_sigma = *std::max_element(sigmas.begin(), sigmas.end());
  if (spacing == "linspace" || spacing == "trailing") return max_sigma;
  return std::sqrt(max_sigma * max_sigma + 1.0f);
}

Tensor to_data_prediction(const Tensor& e, const Tensor& x, float sigma, const std::string& type) {
  const AlphaSigma a = alpha_sigma(sigma);
  if (type == "sample") return e.clone();
  if (type == "v_prediction") return weighted_sum(x.shape(), {{a.alpha, x.data<float>()}, {-a.sigma, e.data<float>()}});
  Tensor out = Tensor::empty(x.shape());  // epsilon: (x − σ_t·ε) / α
  const float* m = e.data<float>();
  const float* s = x.data<float>();
  for (int64_t k = 0; k < x.numel(); ++k) out.data<float>()[k] = (s[k] - a.sigma * m[k]) / a.alpha;
  return out;
}

Tensor to_noise_prediction(const Tensor& e, const Tensor& x, float sigma, const std::string& type) {
  const AlphaSigma a = alpha_sigma(sigma);
  if (type == "epsilon") return e.clone();
  if (type == "v_prediction") return weighted_sum(x.shape(), {{a.alpha, e.data<float>()}, {a.sigma, x.data<float>()}});
  Tensor out = Tensor::empty(x.shape());  // sample: (x − α·x₀) / σ_t
  const float* m = e.data<float>();
  const float* s = x.data<float>();
  for (int64_t k = 0; k < x.numel(); ++k) out.data<float>()[k] = (s[k] - a.alpha * m[k]) / a.sigma;
  return out;
}

Tensor add_vp_noise(const std::string& class_name, const Tensor& original, const Tensor& noise, float sigma) {
  check_same_shape(class_name, original, noise);
  const AlphaSigma a = alpha_sigma(sigma);
  return weighted_sum(original.shape(), {{a.alpha, f32_elements(class_name, original, "original samples")},
                                         {a.sigma, f32_elements(class_name, noise, "noise")}});
}

Tensor weighted_sum(const Shape& shape, std::initializer_list<Term> terms) {
  Tensor out = Tensor::empty(shape);
  float* y = out.data<float>();
  const int64_t n = out.numel();
  bool first = true;
  for (const Term& t : terms) {
    for (int64_t i = 0; i < n; ++i) {
      const float product = t.coefficient * t.values[i];
      y[i] = first ? product : y[i] + product;
    }
    first = false;
  }
  return out;
}

void require_one_of(const char* class_name, const std::string& key, const std::string& value,
                    std::initializer_list<const char*> allowed) {
  for (const char* a : allowed)
    if (value == a) return;
  std::string list;
  for (const char* a : allowed) list += std::string(list.empty() ? "" : ", ") + a;
  fail(class_name, ": ", key, " '", value, "' is not supported (", list, ")");
}

void read_beta_schedule(const JsonObject& j, BetaSchedule& c) {
  static constexpr FloatLimits kBeta{0, 1, true, "a noise variance per step is in (0, 1]"};
  c.num_train_timesteps = j.get_int("num_train_timesteps", c.num_train_timesteps, {1, 1000000, "a schedule trains on 1 to 10^6 timesteps"});
  c.beta_start = j.get_float("beta_start", c.beta_start, kBeta);
  c.beta_end = j.get_float("beta_end", c.beta_end, kBeta);
  c.beta_schedule = j.get_string("beta_schedule", c.beta_schedule);
  if (j.has("trained_betas") && !j.json().at("trained_betas").is_null()) {
    const auto& tb = j.json().at("trained_betas");
    if (!tb.is_array()) fail(j.source(), ": trained_betas must be a list of numbers");
    for (const auto& b : tb) {
      if (!b.is_number()) fail(j.source(), ": trained_betas must be a list of numbers");
      c.trained_betas.push_back(b.get<double>());
      j.check("trained_betas", c.trained_betas.back(), kBeta);
    }
  }
  c.rescale_betas_zero_snr = j.get_bool("rescale_betas_zero_snr", c.rescale_betas_zero_snr);
}

}  // namespace mmx
