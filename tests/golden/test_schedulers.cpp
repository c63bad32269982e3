// Every scheduler against diffusers 0.30.3 (schedulers/<class>.json, tests/data/generator/make_scheduler_cases.py),
// through the factory by _class_name, on several configs per class: timesteps for 1, 4, 25 and 50 steps
// identical (as float32); σs and init_noise_sigma bit for bit; whole 4- and 25-step loops — every UNet input
// (scale_model_input) and every step's sample, with the model outputs torch.randn from a seeded CPU
// generator and a stochastic sampler's noise from a second one — and add_noise bit for bit.
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <set>

#include <nlohmann/json.hpp>

#include "mmx/error.hpp"
#include "mmx/files.hpp"
#include "mmx/scheduler.hpp"
#include "mmx/torch_random.hpp"
#include "test_util.hpp"

using namespace mmx;

namespace {

const std::vector<std::string> kClasses = {"DDIMScheduler", "EulerDiscreteScheduler", "EulerAncestralDiscreteScheduler",
                                "DPMSolverMultistepScheduler", "HeunDiscreteScheduler", "UniPCMultistepScheduler",
                                            "LCMScheduler", "TCDScheduler", "DPMSolverSinglestepScheduler",
                                            "LMSDiscreteScheduler"};

nlohmann::json fixture(const std::string& class_name) {
  return nlohmann::json::parse(read_file(test::data("schedulers/" + class_name + ".json")));
}

Shape shape_of(const nlohmann::json& f) { return f["shape"].get<Shape>(); }

Tensor tensor_of(const nlohmann::json& values, const Shape& shape) {
  std::vector<float> v;
  for (const auto& x : values) v.push_back(static_cast<float>(x.get<double>()));
  return Tensor::from_vector(v, shape);
}

std::unique_ptr<Scheduler> scheduler_of(const nlohmann::json& c, const test::TempDir& dir) {
  const std::string path = dir.file(c["name"].get<std::string>() + ".json");
  write_file_atomically(path, c["config"].dump());
  return Scheduler::load(path);
}

// The number of values that differ from the fixture's float32 values, and the largest difference.
std::pair<int64_t, double> compare(const Tensor& got, const nlohmann::json& want) {
  int64_t n = 0;
  double worst = 0;
  for (int64_t i = 0; i < got.numel(); ++i) {
    const float w = static_cast<float>(want[size_t(i)].get<double>()), g = got.data<float>()[i];
    if (g != w && !(std::isnan(g) && std::isnan(w))) ++n, worst = std::max(worst, std::fabs(double(g) - double(w)));
  }
  return {n, worst};
}

Tensor scaled(const Tensor& t, float s) {  // torch: tensor * 0-d float32 tensor
  Tensor y = t.clone();
  for (int64_t i = 0; i < y.numel(); ++i) y.data<float>()[i] *= s;
  return y;
}

const std::set<std::string> kFractionalKarras = {"EulerDiscreteScheduler", "HeunDiscreteScheduler", "LMSDiscreteScheduler"};
constexpr double kKarrasTimestepBound = 1e-4;  // measured here: 6.1e-5 (1 ulp at 512–1024)

bool solves_3x3(const nlohmann::json& c) {
  return c["config"]["_class_name"] == "UniPCMultistepScheduler" && c["config"].value("solver_order", 2) == 3;
}
constexpr double kUniPC3Units = 2;

class SchedulerParity : public ::testing::TestWithParam<std::string> {};

}  // namespace

TEST_P(SchedulerParity, TimestepsSigmasAndInitNoiseSigmaAreDiffusers) {
  const nlohmann::json f = fixture(GetParam());
  test::TempDir dir;
  ASSERT_GE(f["cases"].size(), 3u);
  for (const auto& c : f["cases"]) {
    auto s = scheduler_of(c, dir);
    EXPECT_EQ(s->class_name(), GetParam());
    for (const auto& [steps, want] : c["timesteps"].items()) {
      SCOPED_TRACE(c["name"].get<std::string>() + ", " + steps + " steps");
      s->set_timesteps(std::stoll(steps));
      ASSERT_EQ(s->timesteps().size(), want.size());
      // As the float32 the UNet's time embedding takes (Heun's Karras timesteps are float64 in diffusers).
      // Euler's and Heun's fractional Karras timesteps interpolate numpy's float32 log σ table, which
      // numpy computes with SIMD code chosen by the CPU (on this AVX-512 machine 190 of SDXL's 1000 values
      // are 1 ulp from glibc's logf): there the reference itself moves by a few ulps between machines.
      const bool fractional = c["config"].value("use_karras_sigmas", false) && kFractionalKarras.count(GetParam());
      for (size_t i = 0; i < want.size(); ++i) {
        const float expected = float(want[i].get<double>());
        if (fractional)
          EXPECT_NEAR(s->timesteps()[i], expected, kKarrasTimestepBound) << "timestep " << i;
        else
          EXPECT_EQ(s->timesteps()[i], expected) << "timestep " << i;
      }
      if (c["sigmas"].contains(steps)) {
        const auto& sigmas = c["sigmas"][steps];
        ASSERT_EQ(s->sigmas().size(), sigmas.size());
        for (size_t i = 0; i < sigmas.size(); ++i) EXPECT_EQ(s->sigmas()[i], float(sigmas[i].get<double>())) << "sigma " << i;
      } else {
        EXPECT_TRUE(s->sigmas().empty());
      }
      EXPECT_EQ(s->init_noise_sigma(), float(c["init_noise_sigma"][steps].get<double>()));
    }
  }
}

TEST_P(SchedulerParity, StepLoopsAndAddNoiseAreBitExact) {
  const nlohmann::json f = fixture(GetParam());
  const Shape shape = shape_of(f);
  test::TempDir dir;
  for (const auto& c : f["cases"]) {
    for (const auto& [steps, loop] : c["loops"].items()) {
      SCOPED_TRACE(c["name"].get<std::string>() + ", " + steps + " steps");
      auto s = scheduler_of(c, dir);
      s->set_timesteps(std::stoll(steps));
      auto noise = std::make_shared<TorchGenerator>(loop["noise_seed"].get<uint64_t>());
      s->set_noise_source([noise](const Shape& shape) { return noise->randn(shape); });
      s->set_eta(loop.value("eta", 0.0f));
      TorchGenerator g(std::stoull(steps));
      Tensor sample = scaled(g.randn(shape), s->init_noise_sigma());
      ASSERT_EQ(loop["prev_samples"].size(), s->timesteps().size());
      for (size_t i = 0; i < loop["prev_samples"].size(); ++i) {
        const auto [inputs_off, inputs_worst] = compare(s->scale_model_input(sample, int64_t(i)), loop["model_inputs"][i]);
        EXPECT_EQ(inputs_off, 0) << "UNet input of step " << i << " (largest difference " << inputs_worst << ")";
        sample = s->step(g.randn(shape), int64_t(i), sample);
        const auto [off, worst] = compare(sample, loop["prev_samples"][i]);
        if (solves_3x3(c)) {
          // UniPC of order 3 solves 3 × 3 systems whose last bits follow OpenBLAS's kernels: each step is
          // checked from the reference's own previous sample, within kUniPC3Units rounding units of the
          // step's largest value (tests/README.md).
          float scale = 0;  // the step's largest magnitude: its rounding unit bounds the solve's error
          for (const auto& v : loop["prev_samples"][i]) scale = std::max(scale, std::fabs(float(v.get<double>())));
          const double unit = std::nextafter(scale, INFINITY) - scale;
          EXPECT_LE(worst, kUniPC3Units * unit) << "step " << i << " (" << off << " values differ)";
          sample = tensor_of(loop["prev_samples"][i], shape);
          continue;
        }
        ASSERT_EQ(off, 0) << "step " << i << " (largest difference " << worst << ")";
      }
    }
    auto s = scheduler_of(c, dir);
    s->set_timesteps(4);
    const auto& a = c["add_noise"];
    const Tensor noisy = s->add_noise(tensor_of(a["original"], shape), tensor_of(a["noise"], shape), a["step_index"].get<int64_t>());
    EXPECT_EQ(compare(noisy, a["noisy"]).first, 0) << c["name"];
  }
}

INSTANTIATE_TEST_SUITE_P(Diffusers, SchedulerParity, ::testing::ValuesIn(kClasses),
                         [](const auto& info) { return info.param; });

TEST(SchedulerParity, EveryImplementedClassHasAFixture) {
  for (const auto& name : Scheduler::known_classes())
    EXPECT_TRUE(std::filesystem::exists(test::data("schedulers/" + name + ".json"))) << name;
  EXPECT_EQ(Scheduler::known_classes().size(), kClasses.size());
}

TEST(SchedulerParity, AStochasticSamplerWithoutANoiseSourceIsAnError) {
  test::TempDir dir;
  const nlohmann::json f = fixture("EulerAncestralDiscreteScheduler");
  auto s = scheduler_of(f["cases"][0], dir);
  s->set_timesteps(4);
  ASSERT_TRUE(s->stochastic());
  const Tensor x = Tensor::zeros(shape_of(f));
  EXPECT_THROW(s->step(x, 0, x), Error);
}
