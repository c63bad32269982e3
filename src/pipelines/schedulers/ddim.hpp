// diffusers' DDIMScheduler (ddim.cpp) with eta 0, the deterministic sampler the pipelines run by default:
// timesteps as integers on the leading, trailing or linspace grid, and each step in float32 in torch's
// order (this file's source is compiled with -ffp-contract=off).
#pragma once
#include <string>
#include <vector>

#include "io/json_config.hpp"
#include "mmx/scheduler.hpp"
#include "pipelines/schedulers/noise_schedule.hpp"

namespace mmx {

struct DDIMConfig {  // diffusers 0.30's defaults
  BetaSchedule betas;
  bool clip_sample = true;
  double clip_sample_range = 1.0;
  bool set_alpha_to_one = true;  // the step after the last uses alphas_cumprod 1 (else alphas_cumprod[0])
  int64_t steps_offset = 0;
  std::string prediction_type = "epsilon";   // epsilon | v_prediction | sample
  std::string timestep_spacing = "leading";  // leading | trailing | linspace
  static DDIMConfig from_json(const JsonObject& json);  // thresholding true is refused by name
};

class DDIMScheduler final : public Scheduler {
 public:
  explicit DDIMScheduler(DDIMConfig config);
  std::string class_name() const override { return "DDIMScheduler"; }
  void set_timesteps(int64_t num_inference_steps) override;
  int64_t num_train_timesteps() const override { return config_.betas.num_train_timesteps; }
  const std::vector<float>& timesteps() const override { return timesteps_; }
  float init_noise_sigma() const override { return 1.0f; }
  Tensor scale_model_input(const Tensor& sample, int64_t step_index) const override;  // the sample itself
  Tensor step(const Tensor& model_output, int64_t step_index, const Tensor& sample) override;
  Tensor add_noise(const Tensor& original_samples, const Tensor& noise, int64_t step_index) const override;

 private:
  DDIMConfig config_;
  std::vector<float> alphas_cumprod_, timesteps_;
  float final_alpha_cumprod_ = 1.0f;
  int64_t steps_ = 0;
};

std::unique_ptr<Scheduler> load_ddim(const JsonObject& config);  // the factory's entry

}  // namespace mmx
