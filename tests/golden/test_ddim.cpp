// DDIMScheduler against diffusers 0.30.3 (schedulers/ddim.json, tests/data/generator/make_scheduler_cases.py):
// four configs (SDXL's DDIM settings, the defaults, trailing + v-prediction + zero terminal SNR, linspace +
// sample prediction + cosine schedule): timesteps for 1, 4, 25 and 50 steps identical; whole 4- and 25-step
// loops on recorded model outputs and add_noise bit for bit.
#include <nlohmann/json.hpp>

#include "io/json_config.hpp"
#include "mmx/error.hpp"
#include "mmx/files.hpp"
#include "mmx/scheduler.hpp"
#include "pipelines/schedulers/ddim.hpp"
#include "test_util.hpp"

using namespace mmx;

namespace {

const nlohmann::json& cases() {
  static const nlohmann::json j = nlohmann::json::parse(read_file(test::data("schedulers/ddim.json")));
  return j;
}

Tensor tensor_of(const nlohmann::json& values) {
  std::vector<float> v;
  for (const auto& x : values) v.push_back(static_cast<float>(x.get<double>()));
  return Tensor::from_vector(v, {1, 4, 4, 4});
}

std::unique_ptr<Scheduler> scheduler_of(const nlohmann::json& c, const test::TempDir& dir) {
  const std::string path = dir.file(c["name"].get<std::string>() + ".json");
  write_file_atomically(path, c["config"].dump());
  return Scheduler::load(path);  // through the factory, by _class_name
}

int64_t differing(const Tensor& got, const nlohmann::json& want) {
  int64_t n = 0;
  for (int64_t i = 0; i < got.numel(); ++i) n += got.data<float>()[i] != static_cast<float>(want[size_t(i)].get<double>());
  return n;
}

}  // namespace

TEST(DDIM, TimestepsAreDiffusers) {
  test::TempDir dir;
  ASSERT_EQ(cases()["cases"].size(), 4u);
  for (const auto& c : cases()["cases"]) {
    auto s = scheduler_of(c, dir);
    EXPECT_EQ(s->class_name(), "DDIMScheduler");
    for (const auto& [steps, want] : c["timesteps"].items()) {
      s->set_timesteps(std::stoll(steps));
      std::vector<float> expected;
      for (const auto& t : want) expected.push_back(float(t.get<int64_t>()));
      EXPECT_EQ(s->timesteps(), expected) << c["name"] << " " << steps << " steps";
    }
  }
}

TEST(DDIM, StepLoopsAndAddNoiseAreBitExact) {
  test::TempDir dir;
  for (const auto& c : cases()["cases"]) {
    for (const auto& [steps, loop] : c["loops"].items()) {
      auto s = scheduler_of(c, dir);
      s->set_timesteps(std::stoll(steps));
      EXPECT_EQ(s->init_noise_sigma(), 1.0f);
      Tensor sample = tensor_of(loop["sample"]);
      for (size_t i = 0; i < loop["model_outputs"].size(); ++i) {
        sample = s->step(tensor_of(loop["model_outputs"][i]), int64_t(i), s->scale_model_input(sample, int64_t(i)));
        ASSERT_EQ(differing(sample, loop["prev_samples"][i]), 0) << c["name"] << ", " << steps << " steps, step " << i;
      }
    }
    auto s = scheduler_of(c, dir);
    s->set_timesteps(4);
    const auto& a = c["add_noise"];
    const Tensor noisy = s->add_noise(tensor_of(a["original"]), tensor_of(a["noise"]), a["step_index"].get<int64_t>());
    EXPECT_EQ(differing(noisy, a["noisy"]), 0) << c["name"];
  }
}

TEST(DDIM, BadConfigsAreRefusedByName) {
  test::TempDir dir;
  const auto refuse = [&](nlohmann::json config, const std::string& needle) {
    config["_class_name"] = "DDIMScheduler";
    const std::string path = dir.file("bad.json");
    write_file_atomically(path, config.dump());
    try {
      auto s = Scheduler::load(path);
      s->set_timesteps(1001);
      ADD_FAILURE() << config.dump();
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  refuse({{"thresholding", true}}, "thresholding");
  refuse({{"prediction_type", "flow"}}, "prediction_type 'flow'");
  refuse({{"timestep_spacing", "karras"}}, "timestep_spacing 'karras'");
  refuse({{"beta_schedule", "sigmoid"}}, "beta_schedule 'sigmoid'");
  refuse({}, "between 1 and 1000");
}
