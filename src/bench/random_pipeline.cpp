// A full-size StableDiffusionXLPipeline folder with random weights, built from the real configs: what
// the benchmark and the acceptance run load through the same path as the Hub's folder (mmap, fp16
// variant names, model_index.json checks), without downloading 7 GB of weights.
#include <filesystem>

#include "mmx/files.hpp"
#include "core/log.hpp"
#include "io/json_config.hpp"
#include "bench/random_pipeline.hpp"
#include "mmx/error.hpp"
#include "mmx/safetensors.hpp"
#include "models/autoencoder_kl.hpp"
#include "models/bert.hpp"
#include "models/vit.hpp"
#include "models/clip.hpp"
#include "models/unet2d_condition.hpp"
#include "models/weights.hpp"

namespace mmx {
namespace fs = std::filesystem;

namespace {

// The loader's tensors under the given prefixes, all stored as `dtype` (a fp16 variant file is F16 throughout).
void save_synthesised(const WeightLoader& loader, const std::vector<std::string>& prefixes, DType dtype,
                      const std::string& path) {
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const auto& [name, t] : loader.synthesised()) {
    bool keep = prefixes.empty();
    for (const auto& p : prefixes) keep |= name.compare(0, p.size(), p) == 0;
    if (keep) tensors.emplace_back(name, t.to(dtype));
  }
  write_safetensors(path, tensors);
  log_info("wrote ", path, " (", tensors.size(), " tensors)");
}

// A component's configuration and tokenizer files (not its weights, if the source folder has any).
void copy_files(const fs::path& from, const fs::path& to) {
  fs::create_directories(to);
  for (const auto& entry : fs::directory_iterator(from)) {
    const std::string ext = entry.path().extension().string();
    if (entry.is_regular_file() && ext != ".safetensors" && ext != ".bin")
      fs::copy_file(entry.path(), to / entry.path().filename(), fs::copy_options::overwrite_existing);
  }
}

}  // namespace

void write_random_sdxl_pipeline(const std::string& configs_dir, const std::string& vocab_dir,
                                const std::string& out_dir, DType dtype, uint64_t seed) {
  if (dtype != DType::F16 && dtype != DType::F32) fail("random pipeline: dtype must be F16 or F32");
  if (!file_exists(join_path(configs_dir, "model_index.json")))
    fail(configs_dir, ": no model_index.json (give the folder of the pipeline's configs)");
  if (fs::exists(out_dir) && !fs::is_empty(out_dir)) fail(out_dir, ": exists and is not empty");
  const fs::path in(configs_dir), out(out_dir);
  fs::create_directories(out);
  fs::copy_file(in / "model_index.json", out / "model_index.json");
  copy_files(in / "scheduler", out / "scheduler");
  for (const char* tok : {"tokenizer", "tokenizer_2"}) {
    copy_files(in / tok, out / tok);
    for (const char* f : {"vocab.json", "merges.txt"})  // the Hub's configs come without the vocabulary
      if (!fs::exists(out / tok / f)) fs::copy_file(fs::path(vocab_dir) / f, out / tok / f);
  }
  const std::string suffix = dtype == DType::F16 ? ".fp16.safetensors" : ".safetensors";
  // Each component in its own scope: one model's weights in memory at a time.
  for (const char* enc : {"text_encoder", "text_encoder_2"}) {
    copy_files(in / enc, out / enc);
    const auto loader = WeightLoader::random(seed++, Placement(), dtype);
    const CLIPModel model(CLIPConfig::from_json(JsonObject::load((in / enc / "config.json").string())), *loader);
    // CLIPTextModel holds text_model.*; CLIPTextModelWithProjection also text_projection.
    std::vector<std::string> keep = {"text_model."};
    if (std::string(enc) == "text_encoder_2") keep.push_back("text_projection.");
    save_synthesised(*loader, keep, dtype, (out / enc / ("model" + suffix)).string());
  }
  {
    copy_files(in / "unet", out / "unet");
    const auto loader = WeightLoader::random(seed++, Placement(), dtype);
    const UNet2DConditionModel unet(
        UNet2DConditionConfig::from_json(JsonObject::load((in / "unet" / "config.json").string())), *loader);
    save_synthesised(*loader, {}, dtype, (out / "unet" / ("diffusion_pytorch_model" + suffix)).string());
  }
  {
    copy_files(in / "vae", out / "vae");
    const auto loader = WeightLoader::random(seed++, Placement(), dtype);
    const AutoencoderKL vae(AutoencoderKLConfig::from_json(JsonObject::load((in / "vae" / "config.json").string())),
                            *loader);
    save_synthesised(*loader, {}, dtype, (out / "vae" / ("diffusion_pytorch_model" + suffix)).string());
  }
}

void write_random_model_folder(const std::string& name, const std::string& data_dir, const std::string& out_dir,
                               DType dtype, uint64_t seed) {
  const fs::path configs = fs::path(data_dir) / "real-configs" / name, out(out_dir);
  if (name != "bert-base-uncased" && name != "clip-vit-base-patch32" && name != "vit-base-patch16-224")
    usage_error("random model '", name, "': bert-base-uncased, clip-vit-base-patch32 or vit-base-patch16-224");
  if (!fs::exists(configs / "config.json")) fail(configs.string(), ": no config.json (give --data the folder holding real-configs/)");
  if (fs::exists(out) && !fs::is_empty(out)) fail(out_dir, ": exists and is not empty");
  copy_files(configs, out);
  const std::string tokenizer = name == "bert-base-uncased" ? "bert-base-uncased" : name == "clip-vit-base-patch32" ? "clip" : "";
  if (!tokenizer.empty())
    for (const auto& entry : fs::directory_iterator(fs::path(data_dir) / "tokenizers" / tokenizer))
      if (entry.is_regular_file() && !fs::exists(out / entry.path().filename()))
        fs::copy_file(entry.path(), out / entry.path().filename());
  const JsonObject config = JsonObject::load((configs / "config.json").string());
  const auto loader = WeightLoader::random(seed, Placement(), dtype);
  if (name == "bert-base-uncased") BertModel model(BertConfig::from_json(config), *loader);
  else if (name == "clip-vit-base-patch32") CLIPModel model(CLIPConfig::from_json(config), *loader);
  else ViTModel model(ViTConfig::from_json(config), *loader);
  save_synthesised(*loader, {}, dtype, (out / "model.safetensors").string());
}

}  // namespace mmx
