// diffusers' DPMSolverMultistepScheduler (dpm_solver_multistep.cpp): DPM-Solver and DPM-Solver++
// (arXiv 2206.00927, 2211.01095) of order 1–3 over the log-SNR λ, deterministic or SDE — the samplers
// people call "DPM++ 2M", "DPM++ 2M Karras" and "DPM++ 2M SDE". Integer timesteps, σs in float32, and
// every update in torch's float32 order.
#pragma once
#include <string>
#include <vector>

#include "io/json_config.hpp"
#include "mmx/scheduler.hpp"
#include "pipelines/schedulers/noise_schedule.hpp"

namespace mmx {

struct DPMSolverMultistepConfig {  // diffusers 0.30's defaults
  BetaSchedule betas;
  int64_t solver_order = 2;
  std::string prediction_type = "epsilon";       // epsilon | sample | v_prediction
  std::string algorithm_type = "dpmsolver++";    // dpmsolver++ | sde-dpmsolver++ | dpmsolver | sde-dpmsolver
  std::string solver_type = "midpoint";          // midpoint | heun
  bool lower_order_final = true;                 // first/second order for the last steps under 15 steps
  bool euler_at_final = false;
  bool use_karras_sigmas = false;
  bool use_lu_lambdas = false;
  std::string final_sigmas_type = "zero";        // zero | sigma_min
  double lambda_min_clipped = -INFINITY;
  std::string timestep_spacing = "linspace";     // linspace | leading | trailing
  int64_t steps_offset = 0;
  // The config as diffusers reads it: "deis" runs as dpmsolver++, "logrho"/"bh1"/"bh2" as midpoint
  // (diffusers' own substitutions); thresholding and learned variances are refused by name.
  static DPMSolverMultistepConfig from_json(const JsonObject& json);
};

class DPMSolverMultistepScheduler final : public Scheduler {
 public:
  explicit DPMSolverMultistepScheduler(DPMSolverMultistepConfig config);
  std::string class_name() const override { return "DPMSolverMultistepScheduler"; }
  void set_timesteps(int64_t num_inference_steps) override;
  int64_t num_train_timesteps() const override { return config_.betas.num_train_timesteps; }
  const std::vector<float>& timesteps() const override { return timesteps_; }
  const std::vector<float>& sigmas() const override { return sigmas_; }
  float init_noise_sigma() const override { return 1.0f; }
  Tensor scale_model_input(const Tensor& sample, int64_t step_index) const override;  // the sample itself
  Tensor step(const Tensor& model_output, int64_t step_index, const Tensor& sample) override;
  Tensor add_noise(const Tensor& original_samples, const Tensor& noise, int64_t step_index) const override;
  bool stochastic() const override;

 private:
  Tensor convert_model_output(const Tensor& model_output, int64_t step_index, const Tensor& sample) const;
  Tensor first_order(int64_t i, const Tensor& sample, const Tensor& noise) const;
  Tensor second_order(int64_t i, const Tensor& sample, const Tensor& noise) const;
  Tensor third_order(int64_t i, const Tensor& sample) const;

  DPMSolverMultistepConfig config_;
  std::vector<float> alphas_cumprod_, lambdas_, sigmas_, timesteps_;
  std::vector<Tensor> model_outputs_;  // the last solver_order converted outputs, oldest first
  int64_t lower_order_nums_ = 0, next_step_ = 0;
};

std::unique_ptr<Scheduler> load_dpm_solver_multistep(const JsonObject& config);

}  // namespace mmx
