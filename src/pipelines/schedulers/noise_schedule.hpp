// The training noise schedule every discrete diffusers scheduler starts from (noise_schedule.cpp): betas
// as torch builds them in float32 (torch.linspace's own kernel), alphas_cumprod with torch.cumprod's
// double accumulator, and numpy's float64 linspace for timestep grids.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "io/json_config.hpp"
#include "mmx/tensor.hpp"

namespace mmx {

struct BetaSchedule {  // diffusers' defaults
  int64_t num_train_timesteps = 1000;
  double beta_start = 0.0001, beta_end = 0.02;
  std::string beta_schedule = "linear";  // linear | scaled_linear | squaredcos_cap_v2
  std::vector<double> trained_betas;     // non-empty: used instead of the schedule
  bool rescale_betas_zero_snr = false;
};
// The keys above from a scheduler_config.json (others are left for the class).
void read_beta_schedule(const JsonObject& json, BetaSchedule& schedule);
// The betas (rescaled to zero terminal SNR where asked); an unknown schedule fails naming `class_name`.
std::vector<float> schedule_betas(const BetaSchedule& schedule, const char* class_name);

std::vector<float> torch_linspace(float start, float end, int64_t n);     // torch.linspace(dtype=float32)
std::vector<double> numpy_linspace(double start, double stop, int64_t n);  // numpy.linspace, float64
std::vector<float> torch_cumprod(const std::vector<float>& x);             // torch.cumprod (double accumulator)

// 1 − β cumulated (torch.cumprod). Under zero terminal SNR the σ-parameterised classes set the last to
// 2⁻²⁴ so that its σ is finite; DDIM, LCM and TCD keep the 0 (`finite_last_sigma` false).
std::vector<float> schedule_alphas_cumprod(const BetaSchedule& schedule, const char* class_name, bool finite_last_sigma = true);

// The k-diffusion family's σ view of the schedule (Euler, Euler a, Heun, LMS, DPM-Solver):
// σ_t = ((1 − ᾱ_t) / ᾱ_t)^½ per training timestep in float32, as torch computes it.
std::vector<float> training_sigmas(const std::vector<float>& alphas_cumprod);
std::vector<float> log_of(const std::vector<float>& x);  // numpy.log on a float32 array
// The timestep grid of that family for `steps` steps, descending: float32 values (held in double, as
// numpy holds them after astype(float32)); linspace | leading (+ steps_offset) | trailing.
std::vector<double> float_timestep_grid(const std::string& spacing, int64_t num_train_timesteps, int64_t steps,
                                        int64_t steps_offset);
// The Euler family's schedule (Euler a, Heun, LMS): float_timestep_grid, σ interpolated there, or with
// `karras` Karras' σs between the interpolated ends and their fractional timesteps (sigma_to_t).
void k_diffusion_schedule(const std::string& spacing, int64_t num_train_timesteps, int64_t steps, int64_t steps_offset,
                          const std::vector<float>& alphas_cumprod, bool karras, std::vector<double>& timesteps,
                          std::vector<double>& sigmas);
// The multistep solvers' integer grid (DPM-Solver, UniPC): `steps` timesteps below `last_timestep`
// (the training length unless λ is clipped), descending; linspace | leading (+ steps_offset) | trailing.
std::vector<double> solver_timestep_grid(const std::string& spacing, int64_t num_train_timesteps, int64_t last_timestep,
                                         int64_t steps, int64_t steps_offset);
// LCM's and TCD's timesteps: `steps` picked evenly (numpy.linspace without endpoint, floored) from the
// distillation schedule k·i − 1 (i = 1..original_steps, k = train // original_steps), descending.
std::vector<double> consistency_timesteps(int64_t num_train_timesteps, int64_t original_steps, int64_t steps,
                                          const char* class_name);
double numpy_interp(double x, const std::vector<float>& fp);  // numpy.interp(x, arange(len(fp)), fp)
// diffusers' _sigma_to_t: the fractional training timestep of σ, interpolating the log σ table.
double sigma_to_t(double sigma, const std::vector<float>& log_sigmas);
// Karras et al. (2022)'s schedule, rho 7, in float64: `steps` σs from sigma_max down to sigma_min.
std::vector<double> karras_sigmas(double sigma_min, double sigma_max, int64_t steps);
// The VP view of a k-diffusion σ (diffusers' _sigma_to_alpha_sigma_t, in float32): α = 1 / (σ² + 1)^½,
// σ_t = σ·α, and the half log-SNR λ = log α − log σ_t the multistep solvers step in.
struct AlphaSigma {
  float alpha, sigma, lambda;
};
AlphaSigma alpha_sigma(float sigma);
// Refuses a step count outside 1..num_train_timesteps (a usage error: it comes from --steps).
void check_step_count(int64_t steps, int64_t num_train_timesteps);

// The checks every scheduler makes, failing with the class's name: at least 2 training timesteps and
// trained_betas of that length; a step index within the `steps` set; two tensors of one shape; F32 data.
void check_train_timesteps(const BetaSchedule& schedule, const char* class_name);
void check_step_index(const std::string& class_name, int64_t step_index, size_t steps);
void check_same_shape(const std::string& class_name, const Tensor& a, const Tensor& b);
const float* f32_elements(const std::string& class_name, const Tensor& t, const char* what);

// The k-diffusion σ parameterisation shared by Euler, Euler a, Heun and LMS (float32, torch's order):
// the UNet input x / (σ² + 1)^½, add_noise x + ε·σ, and init_noise_sigma — max σ for linspace and trailing
// spacing, (max σ² + 1)^½ for leading.
Tensor scale_by_sigma(const std::string& class_name, const Tensor& sample, float sigma);
Tensor add_sigma_noise(const std::string& class_name, const Tensor& original, const Tensor& noise, float sigma);
float sigma_init_noise(const std::string& class_name, const std::vector<float>& sigmas, const std::string& spacing);

// The VP view the DPM-Solvers and UniPC share: the model output as the data prediction x₀ (or, for the
// noise-space variants, ε) at σ (their convert_model_output), and add_noise α·x + σ_t·ε.
Tensor to_data_prediction(const Tensor& model_output, const Tensor& sample, float sigma, const std::string& prediction_type);
Tensor to_noise_prediction(const Tensor& model_output, const Tensor& sample, float sigma, const std::string& prediction_type);
Tensor add_vp_noise(const std::string& class_name, const Tensor& original, const Tensor& noise, float sigma);

// Σ cₖ·xₖ over whole tensors, summed left to right as torch evaluates `c0 * x0 + c1 * x1 − c2 * x2 …` with
// 0-d float32 coefficients (a subtraction is the term with −c: IEEE gives the same value). Every tensor has
// `n` elements; the result is a new F32 tensor of `shape`.
struct Term {
  float coefficient;
  const float* values;
};
Tensor weighted_sum(const Shape& shape, std::initializer_list<Term> terms);

// Fails naming the class, the config key and the values it takes unless `value` is one of `allowed`.
void require_one_of(const char* class_name, const std::string& key, const std::string& value,
                    std::initializer_list<const char*> allowed);

}  // namespace mmx
