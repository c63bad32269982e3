// diffusers' HeunDiscreteScheduler ("Heun"; heun_discrete.cpp): Karras et al.'s second-order Heun step,
// two UNet calls per step. Its timesteps repeat every one after the first (the step at σ_i, then the
// correction at σ_{i+1}), so the loop runs 2·steps − 1 times; step() alternates predictor and corrector.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "io/json_config.hpp"
#include "mmx/scheduler.hpp"
#include "pipelines/schedulers/noise_schedule.hpp"

namespace mmx {

struct HeunDiscreteConfig {  // diffusers 0.30's defaults (this class's betas default to SD's range)
  BetaSchedule betas{1000, 0.00085, 0.012, "linear", {}, false};
  std::string prediction_type = "epsilon";  // epsilon | v_prediction | sample
  bool use_karras_sigmas = false;
  bool clip_sample = false;
  double clip_sample_range = 1.0;
  std::string timestep_spacing = "linspace";  // linspace | leading | trailing
  int64_t steps_offset = 0;
  static HeunDiscreteConfig from_json(const JsonObject& json);
};

class HeunDiscreteScheduler final : public Scheduler {
 public:
  explicit HeunDiscreteScheduler(HeunDiscreteConfig config);
  std::string class_name() const override { return "HeunDiscreteScheduler"; }
  void set_timesteps(int64_t num_inference_steps) override;
  int64_t num_train_timesteps() const override { return config_.betas.num_train_timesteps; }
  const std::vector<float>& timesteps() const override { return timesteps_; }  // 2·steps − 1
  const std::vector<float>& sigmas() const override { return sigmas_; }
  float init_noise_sigma() const override;
  Tensor scale_model_input(const Tensor& sample, int64_t step_index) const override;
  Tensor step(const Tensor& model_output, int64_t step_index, const Tensor& sample) override;
  Tensor add_noise(const Tensor& original_samples, const Tensor& noise, int64_t step_index) const override;
  int64_t order() const override { return 2; }

 private:
  HeunDiscreteConfig config_;
  std::vector<float> alphas_cumprod_, sigmas_, timesteps_;
  // Between the predictor and the corrector: the derivative, dt and the sample the step started from.
  std::optional<float> dt_;
  Tensor derivative_, start_sample_;
};

std::unique_ptr<Scheduler> load_heun_discrete(const JsonObject& config);

}  // namespace mmx
