// DDIMScheduler's refusals (its parity with diffusers is in test_schedulers.cpp).
#include <nlohmann/json.hpp>

#include "mmx/error.hpp"
#include "mmx/files.hpp"
#include "mmx/scheduler.hpp"
#include "test_util.hpp"

using namespace mmx;

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
