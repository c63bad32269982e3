// The scheduler factory: scheduler_config.json's _class_name → the class under schedulers/. A new
// scheduler is its file there and a line in kSchedulers.
#include <algorithm>

#include "io/json_config.hpp"
#include "mmx/error.hpp"
#include "mmx/scheduler.hpp"
#include "pipelines/schedulers/ddim.hpp"
#include "pipelines/schedulers/euler_discrete.hpp"

namespace mmx {
namespace {

struct SchedulerClass {
  const char* class_name;
  std::unique_ptr<Scheduler> (*load)(const JsonObject& config);
};
const SchedulerClass kSchedulers[] = {
    {"EulerDiscreteScheduler", load_euler_discrete},
    {"DDIMScheduler", load_ddim},
};

}  // namespace

std::vector<std::string> Scheduler::known_classes() {
  std::vector<std::string> names;
  for (const auto& s : kSchedulers) names.push_back(s.class_name);
  return names;
}

std::unique_ptr<Scheduler> Scheduler::load(const std::string& path) {
  const JsonObject config = JsonObject::load(path);
  const std::string cls = config.require_string("_class_name");
  for (const auto& s : kSchedulers)
    if (cls == s.class_name) return s.load(config);
  std::string known;
  for (const auto& name : known_classes()) known += (known.empty() ? "" : ", ") + name;
  fail(path, ": scheduler '", cls, "' is not implemented by this mmx (known: ", known, ")");
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
