// A Hugging Face model folder: config.json (model_type picks the architecture), weights, tokenizer.
#pragma once
#include <string>

#include "io/json_config.hpp"

namespace mmx {

struct ModelFolder {
  std::string path;
  JsonObject config;       // config.json
  std::string model_type;  // "bert", ...
};

// Fails with a clear message when the folder, its config.json or its model_type is missing,
// or when the model_type is one mmx does not implement.
ModelFolder open_model_folder(const std::string& path);

// The folder's preprocessor_config.json, or ViTImageProcessor's defaults at the model's image size.
struct ImageProcessorConfig;
ImageProcessorConfig load_processor(const ModelFolder& folder);

}  // namespace mmx
