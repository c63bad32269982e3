// The training noise schedule every discrete diffusers scheduler starts from (noise_schedule.cpp): betas
// as torch builds them in float32 (torch.linspace's own kernel), alphas_cumprod with torch.cumprod's
// double accumulator, and numpy's float64 linspace for timestep grids.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "io/json_config.hpp"

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

// Fails naming the class, the config key and the values it takes unless `value` is one of `allowed`.
void require_one_of(const char* class_name, const std::string& key, const std::string& value,
                    std::initializer_list<const char*> allowed);

}  // namespace mmx
