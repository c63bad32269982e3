// UNet2DConditionModel against diffusers 0.30.3 (expected/sdxl-tiny.safetensors): the three recorded
// forwards of the 3-step run (CFG batch of 2: unconditional, conditional), from the fp32 files.
#include "io/checkpoint.hpp"
#include "io/diffusers_folder.hpp"
#include "models/unet2d_condition.hpp"
#include "test_util.hpp"

using namespace mmx;

namespace {
Tensor part(const Tensor& t, int64_t i) {  // t[i], leading axis dropped
  Shape s(t.shape().begin() + 1, t.shape().end());
  return t.narrow0(i, 1).clone().reshape(s);
}
}  // namespace

TEST(UNet, EveryForwardOfTheThreeStepRunIsDiffusers) {
  const auto expected = SafetensorsFile::open(test::data("expected/sdxl-tiny.safetensors"));
  const std::string dir = test::data("models/sdxl-tiny/unet");
  const auto config = UNet2DConditionConfig::from_json(JsonObject::load(dir + "/config.json"));
  EXPECT_EQ(config.num_attention_heads, (std::vector<int64_t>{2, 4}));  // from attention_head_dim, as diffusers
  const auto unet = load_model<UNet2DConditionModel>(
      config, Checkpoint::open(component_weights(dir, "diffusion_pytorch_model", "")), test::placement());
  const Tensor samples = expected.get("unet_in_sample"), outs = expected.get("unet_out");
  const Tensor timesteps = expected.get("unet_in_timestep");
  for (int64_t i = 0; i < 3; ++i) {
    const Tensor out = unet.forward(part(samples, i), timesteps.data<float>()[i], expected.get("unet_in_encoder_hidden_states"),
                                    expected.get("unet_in_text_embeds"), expected.get("unet_in_time_ids"));
    test::expect_close("unet_out[" + std::to_string(i) + "]", out, part(outs, i), 1e-5);
  }
}

TEST(UNet, TimestepEmbeddingFollowsDiffusers) {
  // get_timestep_embedding(t, 4, flip_sin_to_cos=True): [cos(t·f), sin(t·f)] with f = exp(−ln(10000)·i / 2)
  const Tensor e = timestep_embedding({667.0f}, 4, true, 0);
  const float f1 = std::exp(static_cast<float>(-std::log(10000.0)) / 2.0f);
  EXPECT_FLOAT_EQ(e.data<float>()[0], std::cos(667.0f));
  EXPECT_FLOAT_EQ(e.data<float>()[1], std::cos(667.0f * f1));
  EXPECT_FLOAT_EQ(e.data<float>()[2], std::sin(667.0f));
  EXPECT_FLOAT_EQ(e.data<float>()[3], std::sin(667.0f * f1));
}
