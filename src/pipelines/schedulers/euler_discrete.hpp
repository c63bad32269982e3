// diffusers' EulerDiscreteScheduler (the SDXL default; euler_discrete.cpp), reproduced in the reference's
// own dtypes: betas and sigmas in float32 as torch computes them, the timestep grid and interpolation in
// float64 as numpy does, and every per-step operation in float32 in torch's order.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "io/json_config.hpp"
#include "mmx/scheduler.hpp"

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
  static EulerDiscreteConfig from_json(const JsonObject& json);
  static EulerDiscreteConfig load(const std::string& path);  // also checks the file names this class
};

class EulerDiscreteScheduler final : public Scheduler {
 public:
  explicit EulerDiscreteScheduler(EulerDiscreteConfig config);
  const EulerDiscreteConfig& config() const { return config_; }
  std::string class_name() const override { return "EulerDiscreteScheduler"; }

  void set_timesteps(int64_t num_inference_steps) override;
  int64_t num_train_timesteps() const override { return config_.num_train_timesteps; }
  const std::vector<float>& timesteps() const override { return timesteps_; }  // one per step
  const std::vector<float>& sigmas() const override { return sigmas_; }  // steps + 1 (the last is the final sigma)
  float init_noise_sigma() const override;

  // sample / sqrt(sigma² + 1) for the step_index-th step.
  Tensor scale_model_input(const Tensor& sample, int64_t step_index) const override;
  // One Euler step from step_index to step_index + 1 (no churn: the pipelines' s_churn = 0).
  Tensor step(const Tensor& model_output, int64_t step_index, const Tensor& sample) override;
  // original + noise · sigma of the step_index-th step.
  Tensor add_noise(const Tensor& original_samples, const Tensor& noise, int64_t step_index) const override;

  const std::vector<float>& alphas_cumprod() const { return alphas_cumprod_; }

 private:
  EulerDiscreteConfig config_;
  std::vector<float> alphas_cumprod_, sigmas_, timesteps_;
};

std::unique_ptr<Scheduler> load_euler_discrete(const JsonObject& config);  // the factory's entry

}  // namespace mmx
