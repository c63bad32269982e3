// libFuzzer: arbitrary bytes as a diffusers component config (the UNet's, the VAE's, the scheduler's)
// must give a config within the limits of json_config.hpp or an mmx::Error; a scheduler built from an
// accepted config must give finite sigmas for a few step counts.
#include <unistd.h>

#include <cstdio>
#include <string>

#include "io/json_config.hpp"
#include "models/autoencoder_kl.hpp"
#include "models/unet2d_condition.hpp"
#include "pipelines/schedulers/euler_discrete.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/mmx-fuzz-" + std::to_string(getpid()) + ".json";
  if (std::FILE* f = std::fopen(path.c_str(), "wb")) {
    std::fwrite(data, 1, size, f);
    std::fclose(f);
  }
  try {
    const mmx::JsonObject json = mmx::JsonObject::load(path);
    try { mmx::UNet2DConditionConfig::from_json(json); } catch (const mmx::Error&) {}
    try { mmx::AutoencoderKLConfig::from_json(json); } catch (const mmx::Error&) {}
    try {
      mmx::EulerDiscreteScheduler scheduler(mmx::EulerDiscreteConfig::from_json(json));
      for (int64_t steps : {1, 7, 50}) scheduler.set_timesteps(steps);
    } catch (const mmx::Error&) {
    }
  } catch (const mmx::Error&) {
  }
  return 0;
}
