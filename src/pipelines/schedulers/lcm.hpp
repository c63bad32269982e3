// diffusers' LCMScheduler ("LCM"; lcm.cpp): the multistep sampling of latent consistency models
// (arXiv 2310.04378) — each step maps the sample to its consistency-model estimate of x₀ (the boundary
// scalings c_skip, c_out) and, before the last, noises it again to the next timestep with fresh noise
// from the pipeline's generator. Timesteps come from the distillation schedule (original_inference_steps).
#pragma once
#include <string>
#include <vector>

#include "io/json_config.hpp"
#include "mmx/scheduler.hpp"
#include "pipelines/schedulers/noise_schedule.hpp"

namespace mmx {

struct LCMConfig {  // diffusers 0.30's defaults (shared by TCDScheduler)
  BetaSchedule betas{1000, 0.00085, 0.012, "scaled_linear", {}, false};
  int64_t original_inference_steps = 50;
  bool clip_sample = false;
  double clip_sample_range = 1.0;
  bool set_alpha_to_one = true;
  std::string prediction_type = "epsilon";  // epsilon | sample | v_prediction
  double timestep_scaling = 10.0;
  static LCMConfig from_json(const JsonObject& json, const char* class_name);  // thresholding refused
};

class LCMScheduler final : public Scheduler {
 public:
  explicit LCMScheduler(LCMConfig config);
  std::string class_name() const override { return "LCMScheduler"; }
  void set_timesteps(int64_t num_inference_steps) override;
  int64_t num_train_timesteps() const override { return config_.betas.num_train_timesteps; }
  const std::vector<float>& timesteps() const override { return timesteps_; }
  float init_noise_sigma() const override { return 1.0f; }
  Tensor scale_model_input(const Tensor& sample, int64_t step_index) const override;  // the sample itself
  Tensor step(const Tensor& model_output, int64_t step_index, const Tensor& sample) override;
  Tensor add_noise(const Tensor& original_samples, const Tensor& noise, int64_t step_index) const override;
  bool stochastic() const override { return true; }

 private:
  LCMConfig config_;
  std::vector<float> alphas_cumprod_, timesteps_;
};

// √ᾱ·x + √(1 − ᾱ)·ε at a training timestep (DDPM's add_noise, in float32).
Tensor ddpm_add_noise(const std::vector<float>& alphas_cumprod, int64_t timestep, const Tensor& original,
                      const Tensor& noise, const std::string& class_name);
std::unique_ptr<Scheduler> load_lcm(const JsonObject& config);

}  // namespace mmx
