// diffusers' UniPCMultistepScheduler ("UniPC"; unipc_multistep.cpp): the unified predictor–corrector of
// arXiv 2302.04867 (B(h) variants bh1/bh2) of order 1–3 over the log-SNR λ. Each step first corrects the
// previous prediction with the new model output (UniC), then predicts the next sample (UniP).
#pragma once
#include <string>
#include <vector>

#include "io/json_config.hpp"
#include "mmx/scheduler.hpp"
#include "pipelines/schedulers/noise_schedule.hpp"

namespace mmx {

struct UniPCMultistepConfig {  // diffusers 0.30's defaults
  BetaSchedule betas;
  int64_t solver_order = 2;
  std::string prediction_type = "epsilon";  // epsilon | sample | v_prediction
  bool predict_x0 = true;
  std::string solver_type = "bh2";  // bh1 | bh2 (midpoint, heun, logrho run as bh2, as in diffusers)
  bool lower_order_final = true;
  std::vector<int64_t> disable_corrector;  // steps whose corrector is skipped
  bool use_karras_sigmas = false;
  std::string timestep_spacing = "linspace";
  int64_t steps_offset = 0;
  std::string final_sigmas_type = "zero";  // zero | sigma_min
  static UniPCMultistepConfig from_json(const JsonObject& json);  // thresholding is refused by name
};

class UniPCMultistepScheduler final : public Scheduler {
 public:
  explicit UniPCMultistepScheduler(UniPCMultistepConfig config);
  std::string class_name() const override { return "UniPCMultistepScheduler"; }
  void set_timesteps(int64_t num_inference_steps) override;
  int64_t num_train_timesteps() const override { return config_.betas.num_train_timesteps; }
  const std::vector<float>& timesteps() const override { return timesteps_; }
  const std::vector<float>& sigmas() const override { return sigmas_; }
  float init_noise_sigma() const override { return 1.0f; }
  Tensor scale_model_input(const Tensor& sample, int64_t step_index) const override;  // the sample itself
  Tensor step(const Tensor& model_output, int64_t step_index, const Tensor& sample) override;
  Tensor add_noise(const Tensor& original_samples, const Tensor& noise, int64_t step_index) const override;

 private:
  Tensor convert_model_output(const Tensor& model_output, int64_t step_index, const Tensor& sample) const;
  void earlier_differences(int64_t base, int64_t order, float h, float lambda_s0, int64_t n, std::vector<float>& rks,
                           std::vector<std::vector<float>>& D1s) const;
  Tensor predict(int64_t i, const Tensor& sample, int64_t order) const;  // UniP
  Tensor correct(int64_t i, const Tensor& model_t, int64_t order) const;  // UniC, on the last sample

  UniPCMultistepConfig config_;
  std::vector<float> alphas_cumprod_, sigmas_, timesteps_;
  std::vector<Tensor> model_outputs_;  // the last solver_order converted outputs, oldest first
  Tensor last_sample_;
  int64_t lower_order_nums_ = 0, this_order_ = 0, next_step_ = 0;
};

std::unique_ptr<Scheduler> load_unipc_multistep(const JsonObject& config);

}  // namespace mmx
