// diffusers' DPMSolverSinglestepScheduler ("DPM++ SDE" in A1111's table; dpm_solver_singlestep.cpp):
// DPM-Solver(++) taking its steps in groups of 1, 2 or 3 (the order list), each group's higher-order
// update from the sample at the group's start and the model outputs inside it.
#pragma once
#include <string>
#include <vector>

#include "io/json_config.hpp"
#include "mmx/scheduler.hpp"
#include "pipelines/schedulers/noise_schedule.hpp"

namespace mmx {

struct DPMSolverSinglestepConfig {  // diffusers 0.30's defaults
  BetaSchedule betas;
  int64_t solver_order = 2;
  std::string prediction_type = "epsilon";     // epsilon | sample | v_prediction
  std::string algorithm_type = "dpmsolver++";  // dpmsolver++ | sde-dpmsolver++ | dpmsolver
  std::string solver_type = "midpoint";        // midpoint | heun
  bool lower_order_final = false;
  bool use_karras_sigmas = false;
  std::string final_sigmas_type = "zero";  // zero | sigma_min
  double lambda_min_clipped = -INFINITY;
  static DPMSolverSinglestepConfig from_json(const JsonObject& json);
};

class DPMSolverSinglestepScheduler final : public Scheduler {
 public:
  explicit DPMSolverSinglestepScheduler(DPMSolverSinglestepConfig config);
  std::string class_name() const override { return "DPMSolverSinglestepScheduler"; }
  void set_timesteps(int64_t num_inference_steps) override;
  int64_t num_train_timesteps() const override { return config_.betas.num_train_timesteps; }
  const std::vector<float>& timesteps() const override { return timesteps_; }
  const std::vector<float>& sigmas() const override { return sigmas_; }
  float init_noise_sigma() const override { return 1.0f; }
  Tensor scale_model_input(const Tensor& sample, int64_t step_index) const override;  // the sample itself
  Tensor step(const Tensor& model_output, int64_t step_index, const Tensor& sample) override;
  Tensor add_noise(const Tensor& original_samples, const Tensor& noise, int64_t step_index) const override;
  bool stochastic() const override { return config_.algorithm_type == "sde-dpmsolver++"; }

 private:
  Tensor update(int64_t i, int64_t order, const Tensor& noise) const;

  DPMSolverSinglestepConfig config_;
  std::vector<float> alphas_cumprod_, lambdas_, sigmas_, timesteps_;
  std::vector<int64_t> orders_;
  std::vector<Tensor> model_outputs_;  // the last solver_order converted outputs, oldest first
  Tensor group_sample_;                // the sample where the current group of steps began
  int64_t next_step_ = 0;
};

std::unique_ptr<Scheduler> load_dpm_solver_singlestep(const JsonObject& config);

}  // namespace mmx
