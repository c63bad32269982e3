// The scheduler factory: scheduler_config.json's _class_name → the class under schedulers/. A new
// scheduler is its file there and a line in kSchedulers.
#include <algorithm>

#include <nlohmann/json.hpp>

#include "io/json_config.hpp"
#include "mmx/error.hpp"
#include "mmx/scheduler.hpp"
#include "pipelines/schedulers/ddim.hpp"
#include "pipelines/schedulers/dpm_solver_multistep.hpp"
#include "pipelines/schedulers/dpm_solver_singlestep.hpp"
#include "pipelines/schedulers/heun_discrete.hpp"
#include "pipelines/schedulers/lcm.hpp"
#include "pipelines/schedulers/lms_discrete.hpp"
#include "pipelines/schedulers/tcd.hpp"
#include "pipelines/schedulers/unipc_multistep.hpp"
#include "pipelines/schedulers/euler_ancestral.hpp"
#include "pipelines/schedulers/euler_discrete.hpp"

namespace mmx {
namespace {

struct SchedulerClass {
  const char* class_name;
  std::unique_ptr<Scheduler> (*load)(const JsonObject& config);
};
const SchedulerClass kSchedulers[] = {
    {"EulerDiscreteScheduler", load_euler_discrete},
    {"EulerAncestralDiscreteScheduler", load_euler_ancestral},
    {"DDIMScheduler", load_ddim},
    {"DPMSolverMultistepScheduler", load_dpm_solver_multistep},
    {"HeunDiscreteScheduler", load_heun_discrete},
    {"UniPCMultistepScheduler", load_unipc_multistep},
    {"DPMSolverSinglestepScheduler", load_dpm_solver_singlestep},
    {"LMSDiscreteScheduler", load_lms_discrete},
    {"LCMScheduler", load_lcm},
    {"TCDScheduler", load_tcd},
};

}  // namespace

std::vector<std::string> Scheduler::known_classes() {
  std::vector<std::string> names;
  for (const auto& s : kSchedulers) names.push_back(s.class_name);
  return names;
}

namespace {

// The samplers people pick by name (A1111's names) and the diffusers class each is, with the settings the
// name implies on top of the pipeline's config. Names of samplers mmx does not run yet are listed too, so
// that asking for one says so instead of "unknown".
struct SamplerName {
  const char* name;
  const char* class_name;
  bool implemented;
  const char* settings;  // JSON the name implies, over the folder's config (diffusers' docs' table)
};
const SamplerName kSamplerNames[] = {
    {"Euler", "EulerDiscreteScheduler", true, "{}"},
    {"Euler a", "EulerAncestralDiscreteScheduler", true, "{}"},
    {"DDIM", "DDIMScheduler", true, "{}"},
    {"DPM++ 2M", "DPMSolverMultistepScheduler", true, "{}"},
    {"DPM++ 2M Karras", "DPMSolverMultistepScheduler", true, R"({"use_karras_sigmas": true})"},
    {"DPM++ 2M SDE", "DPMSolverMultistepScheduler", true, R"({"algorithm_type": "sde-dpmsolver++"})"},
    {"DPM++ 2M SDE Karras", "DPMSolverMultistepScheduler", true,
     R"({"algorithm_type": "sde-dpmsolver++", "use_karras_sigmas": true})"},
    {"DPM++ SDE", "DPMSolverSinglestepScheduler", true, "{}"},
    {"DPM++ SDE Karras", "DPMSolverSinglestepScheduler", true, R"({"use_karras_sigmas": true})"},
    {"Heun", "HeunDiscreteScheduler", true, "{}"},
    {"LMS", "LMSDiscreteScheduler", true, "{}"},
    {"LMS Karras", "LMSDiscreteScheduler", true, R"({"use_karras_sigmas": true})"},
    {"UniPC", "UniPCMultistepScheduler", true, "{}"},
    {"LCM", "LCMScheduler", true, "{}"},
    {"DPM2", "KDPM2DiscreteScheduler", false, "{}"},
    {"DPM2 a", "KDPM2AncestralDiscreteScheduler", false, "{}"},
    {"TCD", "TCDScheduler", true, "{}"},
};

std::string implemented_names() {
  std::string known;
  for (const auto& n : kSamplerNames)
    if (n.implemented) known += str(known.empty() ? "" : ", ", "\"", n.name, "\" (", n.class_name, ")");
  return known;
}

std::unique_ptr<Scheduler> load_class(const JsonObject& config, const std::string& cls, const std::string& where) {
  for (const auto& s : kSchedulers)
    if (cls == s.class_name) return s.load(config);
  std::string known;
  for (const auto& name : Scheduler::known_classes()) known += (known.empty() ? "" : ", ") + name;
  fail(where, ": scheduler '", cls, "' is not implemented by this mmx (known: ", known, ")");
}

}  // namespace

std::vector<std::pair<std::string, std::string>> Scheduler::known_names() {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& n : kSamplerNames)
    if (n.implemented) out.push_back({n.name, n.class_name});
  return out;
}

std::string Scheduler::display_name(const std::string& asked, const std::string& class_name) {
  if (!asked.empty()) return asked;
  for (const auto& [name, cls] : known_names())
    if (cls == class_name) return name;
  return class_name;
}

std::unique_ptr<Scheduler> Scheduler::load(const std::string& path) {
  const JsonObject config = JsonObject::load(path);
  return load_class(config, config.require_string("_class_name"), path);
}

std::unique_ptr<Scheduler> Scheduler::load(const std::string& path, const std::string& name, const std::string& settings) {
  if (name.empty() && settings.empty()) return load(path);
  nlohmann::json json = JsonObject::load(path).json();
  if (!name.empty()) {
    const SamplerName* found = nullptr;
    for (const auto& n : kSamplerNames)
      if (name == n.name || (name == n.class_name && !found)) found = &n;  // a class name: its plain settings
    if (!found) usage_error("unknown scheduler '", name, "'; this mmx runs ", implemented_names());
    if (!found->implemented)
      usage_error("scheduler '", name, "' (", found->class_name, ") is not implemented by this mmx yet; it runs ", implemented_names());
    json["_class_name"] = found->class_name;
    json.update(nlohmann::json::parse(found->settings));
  }
  if (!settings.empty()) {
    const nlohmann::json extra = nlohmann::json::parse(settings, nullptr, false);
    if (!extra.is_object()) usage_error("scheduler settings must be a JSON object, got '", settings, "'");
    json.update(extra);
  }
  const std::string cls = json.contains("_class_name") && json["_class_name"].is_string() ? json["_class_name"].get<std::string>() : "";
  return load_class(JsonObject(std::move(json), path), cls, path);
}

const std::vector<float>& Scheduler::sigmas() const {
  static const std::vector<float> none;
  return none;
}

Tensor Scheduler::draw_noise(const Shape& shape) const {
  if (!noise_) fail(class_name(), " is stochastic and was given no noise source (the pipeline's generator)");
  Tensor noise = noise_(shape);
  if (noise.shape() != shape || noise.dtype() != DType::F32)
    fail(class_name(), ": the noise source gave ", shape_str(noise.shape()), " where ", shape_str(shape), " F32 was asked");
  return noise;
}

// torch's order of operations, no fused multiply-add (this file is compiled with -ffp-contract=off).
Tensor classifier_free_guidance(const Tensor& model_output, float guidance_scale) {
  if (model_output.ndim() < 1 || model_output.dim(0) % 2 != 0)
    fail("classifier-free guidance needs a batch of [uncond; cond], got ", shape_str(model_output.shape()));
  Shape shape = model_output.shape();
  shape[0] /= 2;
  Tensor out = Tensor::empty(shape);
  const int64_t n = out.numel();
  if (model_output.dtype() != DType::F32)
    fail("classifier-free guidance: the model output must be F32, got ", dtype_name(model_output.dtype()));
  const float* uncond = model_output.data<float>();
  const float* cond = uncond + n;
  float* y = out.data<float>();
  for (int64_t i = 0; i < n; ++i) y[i] = uncond[i] + guidance_scale * (cond[i] - uncond[i]);
  return out;
}

}  // namespace mmx
