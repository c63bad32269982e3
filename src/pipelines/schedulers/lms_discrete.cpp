// LMSDiscreteScheduler as diffusers 0.30 computes it (-ffp-contract=off: torch's and QUADPACK's order).
#include "pipelines/schedulers/lms_discrete.hpp"

#include <algorithm>
#include <cmath>

#include "mmx/error.hpp"

namespace mmx {
namespace {

constexpr const char* kName = "LMSDiscreteScheduler";

// The 10-point Gauss and 21-point Kronrod nodes and weights on [-1, 1] (QUADPACK's dqk21 tables).
constexpr double kGaussWeights[5] = {0.066671344308688137593568809893332, 0.149451349150580593145776339657697,
                                     0.219086362515982043995534934228163, 0.269266719309996355091226921569469,
                                     0.295524224714752870173892994651338};
constexpr double kKronrodNodes[11] = {0.995657163025808080735527280689003, 0.973906528517171720077964012084452,
                                      0.930157491355708226001207180059508, 0.865063366688984510732096688423493,
                                      0.780817726586416897063717578345042, 0.679409568299024406234327365114874,
                                      0.562757134668604683339000099272694, 0.433395394129247190799265943165784,
                                      0.294392862701460198131126603103866, 0.148874338981631210884826001129720,
                                      0.0};
constexpr double kKronrodWeights[11] = {0.011694638867371874278064396062192, 0.032558162307964727478818972459390,
                                        0.054755896574351996031381300244580, 0.075039674810919952767043140916190,
                                        0.093125454583697605535065465083366, 0.109387158802297641899210590325805,
                                        0.123491976262065851077208643474695, 0.134709217311473325928054001771707,
                                        0.142775938577060080797094273138717, 0.147739104901338491374841515972068,
                                        0.149445554002916905664936468389821};

}  // namespace

double gauss_kronrod_21(const std::function<double(double)>& f, double a, double b, double* error) {
  const double centre = 0.5 * (a + b), half = 0.5 * (b - a);
  double fv1[10], fv2[10];
  const double fc = f(centre);
  double gauss = 0.0, kronrod = kKronrodWeights[10] * fc;
  for (int j = 1; j <= 5; ++j) {  // the Gauss nodes (even places of the Kronrod table)
    const int k = 2 * j - 1;
    const double x = half * kKronrodNodes[k];
    fv1[k] = f(centre - x), fv2[k] = f(centre + x);
    const double sum = fv1[k] + fv2[k];
    gauss = gauss + kGaussWeights[j - 1] * sum;
    kronrod = kronrod + kKronrodWeights[k] * sum;
  }
  for (int j = 1; j <= 5; ++j) {  // the Kronrod extension's nodes
    const int k = 2 * j - 2;
    const double x = half * kKronrodNodes[k];
    fv1[k] = f(centre - x), fv2[k] = f(centre + x);
    kronrod = kronrod + kKronrodWeights[k] * (fv1[k] + fv2[k]);
  }
  if (error) {  // dqk21's estimate; mmx reports it, QUADPACK would subdivide above max(1.49e-8, 1e-4·|I|)
    const double mean = kronrod * 0.5;
    double spread = kKronrodWeights[10] * std::fabs(fc - mean);
    for (int k = 0; k < 10; ++k) spread += kKronrodWeights[k] * (std::fabs(fv1[k] - mean) + std::fabs(fv2[k] - mean));
    spread *= std::fabs(half);
    double e = std::fabs((kronrod - gauss) * half);
    if (spread != 0 && e != 0) e = spread * std::min(1.0, std::pow(200 * e / spread, 1.5));
    *error = e;
  }
  return kronrod * half;
}

LMSDiscreteConfig LMSDiscreteConfig::from_json(const JsonObject& j) {
  LMSDiscreteConfig c;
  read_beta_schedule(j, c.betas);
  c.betas.rescale_betas_zero_snr = false;  // not a setting of this class: from_config drops it
  c.use_karras_sigmas = j.get_bool("use_karras_sigmas", c.use_karras_sigmas);
  c.prediction_type = j.get_string("prediction_type", c.prediction_type);
  c.timestep_spacing = j.get_string("timestep_spacing", c.timestep_spacing);
  c.steps_offset = j.get_int("steps_offset", c.steps_offset, {0, 1000000, "an offset within the training timesteps"});
  return c;
}

LMSDiscreteScheduler::LMSDiscreteScheduler(LMSDiscreteConfig config) : config_(std::move(config)) {
  require_one_of(kName, "prediction_type", config_.prediction_type, {"epsilon", "v_prediction", "sample"});
  require_one_of(kName, "timestep_spacing", config_.timestep_spacing, {"linspace", "leading", "trailing"});
  alphas_cumprod_ = schedule_alphas_cumprod(config_.betas, kName);
}

void LMSDiscreteScheduler::set_timesteps(int64_t steps) {
  const auto& c = config_;
  const int64_t n = c.betas.num_train_timesteps;
  check_step_count(steps, n);
  std::vector<double> t, s;
  k_diffusion_schedule(c.timestep_spacing, n, steps, c.steps_offset, alphas_cumprod_, c.use_karras_sigmas, t, s);
  sigmas_.clear();
  for (double v : s) sigmas_.push_back(static_cast<float>(v));
  sigmas_.push_back(0.0f);
  timesteps_.clear();
  for (double v : t) timesteps_.push_back(static_cast<float>(v));
  derivatives_.clear();
  next_step_ = 0;
}

float LMSDiscreteScheduler::init_noise_sigma() const {
  return sigma_init_noise(kName, sigmas_, config_.timestep_spacing);
}

Tensor LMSDiscreteScheduler::scale_model_input(const Tensor& sample, int64_t step_index) const {
  check_step_index(kName, step_index, timesteps_.size());
  return scale_by_sigma(kName, sample, sigmas_[size_t(step_index)]);
}

// The Lagrange basis polynomial of `current_order` over the last `order` σs, integrated from σ_t to
// σ_{t+1}. diffusers' integrand mixes SciPy's float64 τ with float32 0-d tensors: every operation is a
// float32 one, τ rounded to float32 first; quad reads the float32 result as a double.
double LMSDiscreteScheduler::lms_coefficient(int64_t order, int64_t t, int64_t current_order) const {
  const auto& s = sigmas_;
  const auto integrand = [&](double tau) -> double {
    if (order == 1) return 1.0;  // prod stays the Python float 1.0
    const float x = static_cast<float>(tau);
    float prod = 0;
    bool first = true;
    for (int64_t k = 0; k < order; ++k) {
      if (k == current_order) continue;
      const float factor = (x - s[size_t(t - k)]) / (s[size_t(t - current_order)] - s[size_t(t - k)]);
      prod = first ? factor : prod * factor;  // 1.0 · factor is the factor itself
      first = false;
    }
    return prod;
  };
  return gauss_kronrod_21(integrand, s[size_t(t)], s[size_t(t + 1)]);
}

Tensor LMSDiscreteScheduler::step(const Tensor& model_output, int64_t i, const Tensor& sample) {
  check_step_index(kName, i, timesteps_.size());
  check_same_shape(kName, model_output, sample);
  if (!derivatives_.empty() && i != next_step_)
    fail(kName, ": step ", i, " after step ", next_step_ - 1, "; the steps of a multistep method come in order");
  const float sigma = sigmas_[size_t(i)];
  const float s2p1 = sigma * sigma + 1.0f, c_out = -sigma / std::sqrt(s2p1);
  const float* e = f32_elements(kName, model_output, "model output");
  const float* x = f32_elements(kName, sample, "sample");
  const std::string& type = config_.prediction_type;
  const int64_t n = sample.numel();
  Tensor derivative = Tensor::empty(sample.shape());
  float* d = derivative.data<float>();
  for (int64_t k = 0; k < n; ++k) {
    float x0;
    if (type == "epsilon") {
      const float scaled = sigma * e[k];
      x0 = x[k] - scaled;
    } else if (type == "v_prediction") {
      const float a = e[k] * c_out, b = x[k] / s2p1;
      x0 = a + b;
    } else {
      x0 = e[k];
    }
    d[k] = (x[k] - x0) / sigma;
  }
  derivatives_.push_back(derivative);
  if (derivatives_.size() > 4) derivatives_.erase(derivatives_.begin());
  const int64_t order = std::min<int64_t>(i + 1, 4);
  // sample + Σ coeff_k · derivative (newest first), the sum starting from the first product.
  Tensor sum = Tensor::empty(sample.shape());
  float* acc = sum.data<float>();
  for (int64_t k = 0; k < order; ++k) {
    const float coefficient = static_cast<float>(lms_coefficient(order, i, k));
    const float* dk = derivatives_[derivatives_.size() - 1 - size_t(k)].data<float>();
    for (int64_t m = 0; m < n; ++m) {
      const float term = coefficient * dk[m];
      acc[m] = k == 0 ? term : acc[m] + term;
    }
  }
  for (int64_t m = 0; m < n; ++m) acc[m] = x[m] + acc[m];
  next_step_ = i + 1;
  return sum;
}

Tensor LMSDiscreteScheduler::add_noise(const Tensor& original, const Tensor& noise, int64_t step_index) const {
  check_step_index(kName, step_index, timesteps_.size());
  return add_sigma_noise(kName, original, noise, sigmas_[size_t(step_index)]);
}

std::unique_ptr<Scheduler> load_lms_discrete(const JsonObject& config) {
  return std::make_unique<LMSDiscreteScheduler>(LMSDiscreteConfig::from_json(config));
}

}  // namespace mmx
