// diffusers' LMSDiscreteScheduler ("LMS"; lms_discrete.cpp): Karras et al.'s linear multistep method over
// σ, up to order 4, with coefficients ∫ of the Lagrange basis between consecutive σs. diffusers integrates
// them with SciPy's quad (QUADPACK's 21-point Gauss–Kronrod rule) on a float32 integrand; mmx evaluates the
// same rule with the same nodes, weights and order of additions, so the coefficients are the same doubles.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "io/json_config.hpp"
#include "mmx/scheduler.hpp"
#include "pipelines/schedulers/noise_schedule.hpp"

namespace mmx {

struct LMSDiscreteConfig {  // diffusers 0.30's defaults
  BetaSchedule betas;
  bool use_karras_sigmas = false;
  std::string prediction_type = "epsilon";  // epsilon | v_prediction | sample
  std::string timestep_spacing = "linspace";
  int64_t steps_offset = 0;
  static LMSDiscreteConfig from_json(const JsonObject& json);
};

class LMSDiscreteScheduler final : public Scheduler {
 public:
  explicit LMSDiscreteScheduler(LMSDiscreteConfig config);
  std::string class_name() const override { return "LMSDiscreteScheduler"; }
  void set_timesteps(int64_t num_inference_steps) override;
  int64_t num_train_timesteps() const override { return config_.betas.num_train_timesteps; }
  const std::vector<float>& timesteps() const override { return timesteps_; }
  const std::vector<float>& sigmas() const override { return sigmas_; }
  float init_noise_sigma() const override;
  Tensor scale_model_input(const Tensor& sample, int64_t step_index) const override;  // x / (σ² + 1)^½
  Tensor step(const Tensor& model_output, int64_t step_index, const Tensor& sample) override;
  Tensor add_noise(const Tensor& original_samples, const Tensor& noise, int64_t step_index) const override;

 private:
  double lms_coefficient(int64_t order, int64_t t, int64_t current_order) const;

  LMSDiscreteConfig config_;
  std::vector<float> alphas_cumprod_, sigmas_, timesteps_;
  std::vector<Tensor> derivatives_;  // the last four (x − x₀) / σ, oldest first
  int64_t next_step_ = 0;
};

// QUADPACK's dqk21 (the first and, for these polynomial integrands, only rule SciPy's quad applies):
// ∫_a^b f, the 21-point Kronrod sum in QUADPACK's order. `error` gets its error estimate.
double gauss_kronrod_21(const std::function<double(double)>& f, double a, double b, double* error = nullptr);

std::unique_ptr<Scheduler> load_lms_discrete(const JsonObject& config);

}  // namespace mmx
