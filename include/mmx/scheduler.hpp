// Diffusion schedulers (src/pipelines/schedulers/scheduler.cpp), in the shape diffusers' SchedulerMixin
// and candle's Scheduler have: set_timesteps, timesteps, init_noise_sigma, scale_model_input, step,
// add_noise. Steps are named by their index in timesteps() (diffusers' step_index), which stays
// unambiguous where a schedule repeats a timestep. One file per diffusers class under schedulers/, chosen
// by scheduler_config.json's _class_name.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "mmx/tensor.hpp"

namespace mmx {

class Scheduler {
 public:
  virtual ~Scheduler() = default;
  // The scheduler a scheduler_config.json describes, by its _class_name; an unknown class is an error
  // naming the ones this mmx implements.
  static std::unique_ptr<Scheduler> load(const std::string& scheduler_config_path);
  // The same config read as another scheduler, as diffusers' OtherScheduler.from_config(config) does (the
  // fields the other class has are kept, with the settings the name implies): `name` is a diffusers class
  // name ("DDIMScheduler") or the name A1111 users pick ("Euler", "DDIM"). Empty: the file's own class.
  // A name this mmx does not run yet is an error listing the ones it does. `settings`: a JSON object of
  // config fields set last ({"timestep_spacing": "trailing"} for SDXL-Turbo), or "".
  static std::unique_ptr<Scheduler> load(const std::string& scheduler_config_path, const std::string& name,
                                         const std::string& settings = "");
  static std::vector<std::string> known_classes();  // "EulerDiscreteScheduler", ...
  // (A1111 name, diffusers class) of every sampler `load` takes by name.
  static std::vector<std::pair<std::string, std::string>> known_names();
  // The name an image's parameters record: the one asked for, else the A1111 name of a class run with its
  // plain settings ("Euler a"), else the class name.
  static std::string display_name(const std::string& asked, const std::string& class_name);

  virtual std::string class_name() const = 0;
  virtual void set_timesteps(int64_t num_inference_steps) = 0;
  virtual int64_t num_train_timesteps() const = 0;  // the config's (denoising_start/end are fractions of it)
  virtual const std::vector<float>& timesteps() const = 0;  // one per step, after set_timesteps
  // The noise levels of a σ-parameterised scheduler (one more than the steps: the last is where the loop
  // ends); empty for the others (DDIM).
  virtual const std::vector<float>& sigmas() const;
  // The standard deviation the initial noise is scaled by (diffusers' init_noise_sigma).
  virtual float init_noise_sigma() const = 0;
  // The UNet's input at step step_index, from the sample (host F32).
  virtual Tensor scale_model_input(const Tensor& sample, int64_t step_index) const = 0;
  // The sample of the next step from the model's output at this one. Not const: multistep schedulers
  // keep the outputs of earlier steps.
  virtual Tensor step(const Tensor& model_output, int64_t step_index, const Tensor& sample) = 0;
  // Clean samples noised to the level of step step_index (image-to-image starts there).
  virtual Tensor add_noise(const Tensor& original_samples, const Tensor& noise, int64_t step_index) const = 0;

  // Ancestral and SDE samplers add fresh noise in step(): they draw it here, from what diffusers passes as
  // step(..., generator=): the generator that drew the initial latents, continued, so a seed reproduces
  // diffusers' images. Deterministic schedulers never call it.
  using NoiseSource = std::function<Tensor(const Shape&)>;
  virtual bool stochastic() const { return false; }
  void set_noise_source(NoiseSource source) { noise_ = std::move(source); }
  // diffusers' step(eta=): the stochasticity of DDIM and TCD (the SDXL pipelines pass 0.0 unless asked).
  void set_eta(float eta) { eta_ = eta; }
  // How many UNet calls one sampler step takes (diffusers' `order`: Heun's is 2, its timesteps repeat).
  virtual int64_t order() const { return 1; }

 protected:
  Tensor draw_noise(const Shape& shape) const;  // an error when no source was set
  float eta_ = 0.0f;

 private:
  NoiseSource noise_;
};

// Classifier-free guidance on a model output batch [uncond; cond] (first dim 2·N):
// uncond + scale · (cond − uncond), in float32 in torch's order.
Tensor classifier_free_guidance(const Tensor& model_output, float guidance_scale);

}  // namespace mmx
