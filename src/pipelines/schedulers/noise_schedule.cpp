// The training noise schedule (noise_schedule.hpp), computed in torch's and numpy's own arithmetic.
// Compiled with -ffp-contract=off: only the explicit fused multiply-adds of torch's kernels are fused.
#include "pipelines/schedulers/noise_schedule.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

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
