// diffusers' TCDScheduler ("TCD"; tcd.cpp): trajectory consistency distillation's strategic stochastic
// sampling (arXiv 2402.19159). Each step predicts x₀ and ε, moves to an intermediate timestep s =
// ⌊(1 − η)·t_prev⌋, and with η > 0 noises back to t_prev with fresh noise from the pipeline's generator.
// η is diffusers' step(eta=) (Scheduler::set_eta; the pipeline passes 0.0 unless asked, TCD's authors 0.3).
#pragma once
#include <string>
#include <vector>

#include "pipelines/schedulers/lcm.hpp"

namespace mmx {

class TCDScheduler final : public Scheduler {
 public:
  explicit TCDScheduler(LCMConfig config);
  std::string class_name() const override { return "TCDScheduler"; }
  void set_timesteps(int64_t num_inference_steps) override;
  int64_t num_train_timesteps() const override { return config_.betas.num_train_timesteps; }
  const std::vector<float>& timesteps() const override { return timesteps_; }
  float init_noise_sigma() const override { return 1.0f; }
  Tensor scale_model_input(const Tensor& sample, int64_t step_index) const override;  // the sample itself
  Tensor step(const Tensor& model_output, int64_t step_index, const Tensor& sample) override;
  Tensor add_noise(const Tensor& original_samples, const Tensor& noise, int64_t step_index) const override;
  bool stochastic() const override { return eta_ > 0; }

 private:
  LCMConfig config_;
  std::vector<float> alphas_cumprod_, timesteps_;
};

std::unique_ptr<Scheduler> load_tcd(const JsonObject& config);

}  // namespace mmx
