// The model registry (registry.cpp): the one table that knows the architectures. Keyed by config.json's
// model_type, by the class names of its "architectures" list, and by diffusers' _class_name in
// model_index.json, it gives each one's loader (the model file's factory, which parses its config), its
// tokenizer and image processor kinds, its poolings and the score its embeddings are compared with.
// Pipelines ask it; nothing outside it and the model files tests a model_type.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "io/checkpoint.hpp"
#include "io/json_config.hpp"
#include "io/sentence_transformers_folder.hpp"
#include "mmx/embedding_space.hpp"
#include "mmx/placement.hpp"
#include "mmx/tokenizer.hpp"
#include "models/encoder.hpp"
#include "models/weights.hpp"

namespace mmx {

// What a registered class is for in a pipeline.
enum class ModelRole {
  Encoder,      // text and/or image encoders (transformers models): loaded through `load`
  Denoiser,     // a diffusion pipeline's noise predictor (UNet2DConditionModel)
  Autoencoder,  // a diffusion pipeline's latent autoencoder (AutoencoderKL)
};

struct Architecture {
  std::string model_type{};    // config.json's model_type ("" for diffusers classes)
  std::string display_name{};  // for messages: "BERT", "CLIP"
  std::vector<std::string> classes{};  // "architectures" entries and diffusers component classes it answers to
  ModelRole role = ModelRole::Encoder;
  // The model file's factory: the parts its checkpoint holds, bound once at a placement.
  std::unique_ptr<ModelParts> (*load)(const JsonObject& config, const Checkpoint& checkpoint, const Placement& placement,
                                      HalfWeights half) = nullptr;
  std::optional<TokenizerKind> tokenizer{};  // the tokenizer its folders hold (texts)
  std::string image_processor{};             // the processor class its folders default to ("": no images)
  int64_t (*image_size)(const JsonObject& config) = nullptr;  // the size that processor resizes to
  std::vector<Pooling> text_poolings{}, image_poolings{};  // what it embeds with, the first by default
  Score score = Score::Dot;  // how its embeddings are compared by default
};

// The architecture of a config.json (by model_type, else by its "architectures"); an error naming the
// file and listing the model types this mmx implements.
const Architecture& architecture_of(const JsonObject& config);
// The registered class a diffusers folder names (nullptr when none is).
const Architecture* architecture_by_class(const std::string& class_name);
// The classes registered for a role, for messages ("UNet2DConditionModel").
std::vector<std::string> classes_for(ModelRole role);

// A model folder: its path (a Hub id resolved to the cached snapshot), config.json and architecture.
// In a sentence-transformers folder, `path` is its Transformer module's folder and `sentence_transformers`
// holds the modules that follow it.
struct ModelFolder {
  std::string path;
  JsonObject config;
  const Architecture* architecture;
  std::shared_ptr<const SentenceTransformersFolder> sentence_transformers{};
};
// Fails with a clear message when the folder, its config.json or its model_type is missing, or when the
// model_type is one this mmx does not implement.
ModelFolder open_model_folder(const std::string& model);

}  // namespace mmx
