// The engine's seams: devices and their backends (what each supports, how a missing one is refused),
// the model registry (model_type, "architectures", diffusers classes), the scheduler factory, the
// tokenizer kinds, and a program without the hub component refusing to download.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "backend/backend.hpp"
#include "backend/ops.hpp"
#include "io/checkpoint.hpp"
#include "mmx/embed.hpp"
#include "mmx/files.hpp"
#include "mmx/hub_cache.hpp"
#include "mmx/hub_download.hpp"
#include "mmx/scheduler.hpp"
#include "models/registry.hpp"
#include "pipelines/schedulers/euler_discrete.hpp"
#include "test_util.hpp"

using namespace mmx;

namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

void copy_folder(const std::string& from, const std::string& to) {
  std::filesystem::copy(from, to, std::filesystem::copy_options::recursive);
}

}  // namespace

TEST(Devices, ParseNamesAndIndexes) {
  EXPECT_TRUE(Device::parse("cpu").is_cpu());
  EXPECT_EQ(Device::parse("cpu"), Device::cpu());
  const Device cuda = Device::parse("cuda");
  EXPECT_FALSE(cuda.is_cpu());
  EXPECT_EQ(cuda.index(), 0);
  EXPECT_EQ(Device::parse("cuda:3").index(), 3);
  EXPECT_EQ(Device::parse("cuda:3").name(), "cuda:3");
  EXPECT_NE(Device::parse("cuda:1"), cuda);
  EXPECT_EQ(device_kinds().front(), "cpu");
  for (const char* bad : {"tpu", "cuda:", "cuda:x", "cuda:-1", "cuda:999", "cpu:1", ""}) {
    try {
      Device::parse(bad);
      ADD_FAILURE() << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::Usage) << bad;
    }
  }
  EXPECT_NE(error_of([] { Device::parse("tpu"); }).find("cpu, cuda"), std::string::npos);
}

TEST(Devices, AnUnavailableDeviceIsRefusedWithTheReason) {
  const Device far = Device::parse("cuda:200");
  EXPECT_FALSE(device_available(far));
  const std::string why = error_of([&] { require_device(far); });
  EXPECT_NE(why.find("cuda:200"), std::string::npos) << why;
  // Nothing is loaded at a placement that cannot be used, and the message says why.
  EXPECT_FALSE(error_of([&] { TextEmbedder::load(test::data("models/bert-tiny"), Placement{far, DType::F16}); }).empty());
  EXPECT_FALSE(error_of([] { Placement{Device::cpu(), DType::I64}.check(); }).empty());
}

TEST(Backends, TheCpuBackendSaysWhatItSupports) {
  const Backend& cpu = backend(Device::cpu());
  EXPECT_TRUE(cpu.supports(Op::Linear, {DType::F32, DType::F32}));
  EXPECT_TRUE(cpu.supports(Op::Linear, {DType::F32, DType::F16}));   // weights kept half, widened as packed
  EXPECT_TRUE(cpu.supports(Op::Conv2d, {DType::F32, DType::BF16}));
  EXPECT_FALSE(cpu.supports(Op::Linear, {DType::F16, DType::F16}));  // activations are f32 on the CPU
  EXPECT_FALSE(cpu.supports(Op::LayerNorm, {DType::BF16}));
  EXPECT_TRUE(cpu.supports(Op::Gemm, {}));
  EXPECT_FALSE(cpu.supports(Op::TorchRandn, {}));  // torch's CPU generator is TorchGenerator, not an op
  EXPECT_FALSE(cpu.supports(Op::Record, {}));      // ops run as they are called
  EXPECT_FALSE(ops::recordings_enabled(Device::cpu()));
  Tensor out = Tensor::empty({4});
  EXPECT_NE(error_of([&] { ops::torch_randn(0, 0, out); }).find("no such op"), std::string::npos);
  const Tensor half = Tensor::zeros({2, 3}, DType::F16);
  EXPECT_NE(error_of([&] { ops::layer_norm(half, Tensor(), Tensor(), 1e-5f); }).find("must be F32 on cpu"), std::string::npos);
  EXPECT_FALSE(device_description(Device::cpu()).empty());
}

TEST(Registry, ModelTypesArchitecturesAndDiffusersClasses) {
  const JsonObject bert(nlohmann::json{{"model_type", "bert"}}, "bert/config.json");
  EXPECT_EQ(architecture_of(bert).display_name, "BERT");
  EXPECT_TRUE(architecture_of(bert).tokenizer == TokenizerKind::WordPiece);
  EXPECT_EQ(architecture_of(bert).text_poolings.front(), Pooling::MeanNoCls);
  // A config from before model_type, by the class it was saved from.
  const JsonObject old(nlohmann::json{{"architectures", {"BertForMaskedLM"}}}, "old/config.json");
  EXPECT_EQ(&architecture_of(old), &architecture_of(bert));
  const JsonObject clip(nlohmann::json{{"model_type", "clip"}}, "clip/config.json");
  EXPECT_EQ(architecture_of(clip).image_processor, "CLIPImageProcessor");
  EXPECT_EQ(architecture_of(clip).score, Score::ClipLogits);
  const std::string unknown =
      error_of([] { architecture_of(JsonObject(nlohmann::json{{"model_type", "llama"}}, "x/config.json")); });
  EXPECT_NE(unknown.find("x/config.json: model_type 'llama' is not supported"), std::string::npos) << unknown;
  EXPECT_NE(unknown.find("bert, vit, clip"), std::string::npos) << unknown;
  EXPECT_NE(error_of([] { architecture_of(JsonObject(nlohmann::json::object(), "y/config.json")); }).find("no model_type"),
            std::string::npos);
  ASSERT_NE(architecture_by_class("UNet2DConditionModel"), nullptr);
  EXPECT_EQ(architecture_by_class("UNet2DConditionModel")->role, ModelRole::Denoiser);
  EXPECT_EQ(classes_for(ModelRole::Autoencoder), std::vector<std::string>{"AutoencoderKL"});
  EXPECT_EQ(architecture_by_class("CLIPTextModelWithProjection")->model_type, "clip_text_model");
  EXPECT_EQ(architecture_by_class("NoSuchModel"), nullptr);
}

// The registry's factory gives what the checkpoint holds: a classifier folder is also an image encoder.
TEST(Registry, PartsFollowTheCheckpoint) {
  const auto classifier = Model::load(test::data("models/vit-tiny-classifier"));
  EXPECT_TRUE(classifier->has_vision());
  EXPECT_TRUE(classifier->has_classifier());
  EXPECT_FALSE(classifier->has_text());
  EXPECT_FALSE(classifier->logit_scale());
  const auto vit = Model::load(test::data("models/vit-tiny"));
  EXPECT_FALSE(vit->has_classifier());
  const auto clip = Model::load(test::data("models/clip-tiny"));
  EXPECT_TRUE(clip->has_text() && clip->has_vision() && clip->logit_scale());
  EXPECT_EQ(clip->default_text_pooling(), Pooling::Projection);
  const std::string why = error_of([&] { TextEmbedder{vit}; });
  EXPECT_NE(why.find("a ViT model embeds images, not texts"), std::string::npos) << why;
}

TEST(Schedulers, TheFactoryPicksTheClassOfTheConfig) {
  const std::string path = test::data("models/sdxl-tiny/scheduler/scheduler_config.json");
  const auto s = Scheduler::load(path);
  EXPECT_EQ(s->class_name(), "EulerDiscreteScheduler");
  EulerDiscreteScheduler concrete(EulerDiscreteConfig::load(path));
  s->set_timesteps(7);
  concrete.set_timesteps(7);
  EXPECT_EQ(s->timesteps(), concrete.timesteps());
  EXPECT_EQ(s->init_noise_sigma(), concrete.init_noise_sigma());
  test::TempDir dir;
  write_file_atomically(dir.file("s.json"), R"({"_class_name": "KDPM2DiscreteScheduler"})");
  const std::string unknown = error_of([&] { Scheduler::load(dir.file("s.json")); });
  EXPECT_NE(unknown.find("'KDPM2DiscreteScheduler' is not implemented"), std::string::npos) << unknown;
  EXPECT_NE(unknown.find("EulerDiscreteScheduler"), std::string::npos) << unknown;
  write_file_atomically(dir.file("t.json"), R"({"num_train_timesteps": 1000})");
  EXPECT_NE(error_of([&] { Scheduler::load(dir.file("t.json")); }).find("_class_name"), std::string::npos);
}

// add_noise as diffusers' EulerDiscreteScheduler: original + noise · sigmas[step], in float32.
TEST(Schedulers, EulerAddNoiseScalesTheNoiseBySigmaOfTheStep) {
  const auto s = Scheduler::load(test::data("models/sdxl-tiny/scheduler/scheduler_config.json"));
  s->set_timesteps(10);
  EulerDiscreteScheduler concrete(EulerDiscreteConfig::load(test::data("models/sdxl-tiny/scheduler/scheduler_config.json")));
  concrete.set_timesteps(10);
  const Tensor x = test::random_tensor({1, 4, 8, 8}, 3), e = test::random_tensor({1, 4, 8, 8}, 4);
  for (int64_t step : {0, 4, 9}) {
    const Tensor noisy = s->add_noise(x, e, step);
    const float sigma = concrete.sigmas()[size_t(step)];
    double worst = 0;
    for (int64_t i = 0; i < x.numel(); ++i) {
      const double want = double(x.data<float>()[i]) + double(e.data<float>()[i]) * double(sigma);
      worst = std::max(worst, std::fabs(double(noisy.data<float>()[i]) - want));
    }
    EXPECT_LE(worst, 1e-6 * (1 + sigma)) << "step " << step;  // two float32 roundings of values ≤ ~5σ
  }
  // Noised to the first step and scaled for the UNet, a clean zero sample is the noise at unit variance.
  const Tensor zero = Tensor::zeros({1, 4, 8, 8});
  const Tensor scaled = s->scale_model_input(s->add_noise(zero, e, 0), 0);
  const float sigma0 = concrete.sigmas()[0];
  test::expect_close("scale_model_input(add_noise(0, e, 0), 0) = e·σ/√(σ²+1)", scaled,
                     [&] {
                       Tensor t = e.clone();
                       for (int64_t i = 0; i < t.numel(); ++i)
                         t.data<float>()[i] = e.data<float>()[i] * sigma0 / std::sqrt(sigma0 * sigma0 + 1.0f);
                       return t;
                     }(),
                     1e-6);
  EXPECT_THROW(s->add_noise(zero, e, 10), Error);
  EXPECT_THROW(s->add_noise(zero, Tensor::zeros({2}), 0), Error);
}

TEST(Tokenizers, KindsComeFromTheTokenizerClassOrTheArchitecture) {
  EXPECT_TRUE(tokenizer_kind_from_class("BertTokenizerFast") == TokenizerKind::WordPiece);
  EXPECT_TRUE(tokenizer_kind_from_class("CLIPTokenizer") == TokenizerKind::ClipBpe);
  EXPECT_FALSE(tokenizer_kind_from_class("LlamaTokenizer"));
  // A model folder whose tokenizer_config.json names no class (bert-base-uncased's on the Hub): the
  // architecture of its config.json says, as AutoTokenizer falls back to it.
  test::TempDir dir;
  const std::string folder = dir.file("bert");
  copy_folder(test::data("models/bert-tiny"), folder);
  write_file_atomically(folder + "/tokenizer_config.json", R"({"do_lower_case": true, "model_max_length": 512})");
  const std::string why = error_of([&] { Tokenizer::load(folder); });
  EXPECT_NE(why.find("names no tokenizer_class"), std::string::npos) << why;
  const auto tokenizer = load_tokenizer(folder);
  EXPECT_EQ(tokenizer->encode("hello world").input_ids,
            Tokenizer::load(test::data("models/bert-tiny"))->encode("hello world").input_ids);
  EmbedOptions options;
  test::expect_close("embeddings of the folder without tokenizer_class",
                     TextEmbedder::load(folder)->embed({"hello world"}, options).embeddings,
                     TextEmbedder::load(test::data("models/bert-tiny"))->embed({"hello world"}, options).embeddings, 0.0);
}

// A program that links no hub component reads the cache only, and says how to fill it.
TEST(Hub, WithoutADownloaderAMissingModelNamesTheWayToGetIt) {
  test::TempDir dir;
  const test::EnvVar cache("HF_HUB_CACHE", dir.file("hub")), online("HF_HUB_OFFLINE", std::nullopt);
  set_model_downloader(nullptr);
  try {
    TextEmbedder::load("org/not-cached");
    ADD_FAILURE() << "loaded a model that is not cached";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("neither a folder nor a model in the Hugging Face cache"), std::string::npos);
    EXPECT_NE(e.hint().find("mmx download org/not-cached"), std::string::npos) << e.hint();
    EXPECT_NE(e.hint().find("enable_hub_downloads"), std::string::npos) << e.hint();
  }
}
