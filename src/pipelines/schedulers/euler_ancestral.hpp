// diffusers' EulerAncestralDiscreteScheduler ("Euler a"; euler_ancestral.cpp): Euler steps to a lower σ
// (σ_down) with fresh noise of σ_up added, so that each step lands on the marginal of the next σ.
// The timesteps and σs are the Euler ones with linear interpolation; the noise comes from the pipeline's
// generator (Scheduler::set_noise_source).
#pragma once
#include <string>
#include <vector>

#include "io/json_config.hpp"
#include "mmx/scheduler.hpp"
#include "pipelines/schedulers/noise_schedule.hpp"

namespace mmx {

struct EulerAncestralConfig {  // diffusers 0.30's defaults
  BetaSchedule betas;
  std::string prediction_type = "epsilon";    // epsilon | v_prediction
  std::string timestep_spacing = "linspace";  // linspace | leading | trailing
  int64_t steps_offset = 0;
  static EulerAncestralConfig from_json(const JsonObject& json);
};

class EulerAncestralScheduler final : public Scheduler {
 public:
  explicit EulerAncestralScheduler(EulerAncestralConfig config);
  std::string class_name() const override { return "EulerAncestralDiscreteScheduler"; }
  void set_timesteps(int64_t num_inference_steps) override;
  int64_t num_train_timesteps() const override { return config_.betas.num_train_timesteps; }
  const std::vector<float>& timesteps() const override { return timesteps_; }
  const std::vector<float>& sigmas() const override { return sigmas_; }
  float init_noise_sigma() const override;
  Tensor scale_model_input(const Tensor& sample, int64_t step_index) const override;  // x / (σ² + 1)^½
  Tensor step(const Tensor& model_output, int64_t step_index, const Tensor& sample) override;
  Tensor add_noise(const Tensor& original_samples, const Tensor& noise, int64_t step_index) const override;
  bool stochastic() const override { return true; }

 private:
  EulerAncestralConfig config_;
  std::vector<float> alphas_cumprod_, sigmas_, timesteps_;
};

std::unique_ptr<Scheduler> load_euler_ancestral(const JsonObject& config);

}  // namespace mmx
