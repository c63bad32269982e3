// diffusers' EulerDiscreteScheduler (the SDXL default), reproduced in the reference's own dtypes:
// betas and sigmas in float32 as torch computes them, the timestep grid and interpolation in float64
// as numpy does, and every per-step operation in float32 in torch's order.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "mmx/tensor.hpp"

namespace mmx {

struct EulerDiscreteConfig {  // defaults are diffusers 0.30's
  int64_t num_train_timesteps = 1000;
  double beta_start = 0.0001, beta_end = 0.02;
  std::string beta_schedule = "linear";  // linear | scaled_linear | squaredcos_cap_v2
  std::vector<double> trained_betas;     // non-empty: used instead of the schedule
  std::string prediction_type = "epsilon";  // epsilon | v_prediction | sample
  std::string interpolation_type = "linear";  // linear | log_linear
  bool use_karras_sigmas = false;
  std::optional<double> sigma_min, sigma_max;  // Karras range (default: the schedule's ends)
  std::string timestep_spacing = "linspace";   // linspace | leading | trailing
  std::string timestep_type = "discrete";      // discrete | continuous
  int64_t steps_offset = 0;
  bool rescale_betas_zero_snr = false;
  std::string final_sigmas_type = "zero";  // zero | sigma_min

  // scheduler_config.json; unknown values are errors naming the key, unknown keys are ignored
  // (diffusers' configs carry keys of other schedulers, e.g. clip_sample).
  static EulerDiscreteConfig load(const std::string& path);
};

class EulerDiscreteScheduler {
 public:
  explicit EulerDiscreteScheduler(EulerDiscreteConfig config);
  const EulerDiscreteConfig& config() const { return config_; }

  void set_timesteps(int64_t num_inference_steps);
  const std::vector<float>& timesteps() const { return timesteps_; }  // one per step
  const std::vector<float>& sigmas() const { return sigmas_; }        // steps + 1 (the last is the final sigma)
  // The standard deviation the initial noise is scaled by (diffusers' init_noise_sigma).
  float init_noise_sigma() const;

  // sample / sqrt(sigma² + 1) for the step_index-th step.
  Tensor scale_model_input(const Tensor& sample, int64_t step_index) const;
  // One Euler step from step_index to step_index + 1 (no churn: the pipelines' s_churn = 0).
  Tensor step(const Tensor& model_output, int64_t step_index, const Tensor& sample) const;

  const std::vector<float>& alphas_cumprod() const { return alphas_cumprod_; }

 private:
  EulerDiscreteConfig config_;
  std::vector<float> alphas_cumprod_, sigmas_, timesteps_;
};

// Classifier-free guidance on a model output batch [uncond; cond] (first dim 2·N):
// uncond + scale · (cond − uncond), in float32 in torch's order.
Tensor classifier_free_guidance(const Tensor& model_output, float guidance_scale);

}  // namespace mmx
