// libFuzzer: arbitrary bytes as a diffusers component config (the UNet's, the VAE's, the scheduler's)
// must give a config within the limits of json_config.hpp or an mmx::Error; a scheduler built from an
// accepted config must give its timesteps for a few step counts — read as every scheduler class mmx runs.
#include <string>

#include "fuzz_input.hpp"
#include "io/json_config.hpp"
#include "models/autoencoder_kl.hpp"
#include "models/unet2d_condition.hpp"
#include "mmx/scheduler.hpp"
#include "pipelines/schedulers/euler_discrete.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = fuzz_input_file(data, size, ".json");
  try {
    const mmx::JsonObject json = mmx::JsonObject::load(path);
    try { mmx::UNet2DConditionConfig::from_json(json); } catch (const mmx::Error&) {}
    try { mmx::AutoencoderKLConfig::from_json(json); } catch (const mmx::Error&) {}
    try {
      mmx::EulerDiscreteScheduler scheduler(mmx::EulerDiscreteConfig::from_json(json));
      for (int64_t steps : {1, 7, 50}) scheduler.set_timesteps(steps);
    } catch (const mmx::Error&) {
    }
    for (const std::string& name : mmx::Scheduler::known_classes()) try {
        const auto scheduler = mmx::Scheduler::load(path, name);
        for (int64_t steps : {1, 7, 50}) scheduler->set_timesteps(steps);
      } catch (const mmx::Error&) {
      }
  } catch (const mmx::Error&) {
  }
  return 0;
}
