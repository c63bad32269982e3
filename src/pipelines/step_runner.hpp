// Runs a denoising step's model call at a placement (step_runner.cpp). Where the device records op
// sequences (CUDA graphs, ops::Recording), the step is recorded once per input shapes and replayed with
// one launch instead of ~1,500: its inputs are copied into fixed device tensors first; the first call per
// shape runs eagerly (plans, memory pools), the second records, later ones replay. Elsewhere every call
// runs eagerly. Models compute; the runner decides how their calls are launched.
#pragma once
#include <functional>
#include <map>
#include <vector>

#include "backend/ops.hpp"
#include "mmx/placement.hpp"

namespace mmx {

class StepRunner {
 public:
  explicit StepRunner(Placement placement) : placement_(placement) {}
  // `body` computes the step from inputs on the placement's device (undefined inputs stay undefined).
  using Body = std::function<Tensor(const std::vector<Tensor>& on_device)>;
  // Host F32 inputs in, host F32 output out.
  Tensor run(const std::vector<Tensor>& host_inputs, const Body& body);
  int64_t replays() const { return replays_; }  // calls served by a recording

 private:
  struct Recorded {
    std::vector<Tensor> inputs;  // fixed device tensors the recording reads
    Tensor output;               // where the recording writes
    ops::Recording recording;
    int64_t calls = 0;
  };
  Placement placement_;
  std::map<std::vector<int64_t>, Recorded> by_shapes_;
  int64_t replays_ = 0;
};

}  // namespace mmx
