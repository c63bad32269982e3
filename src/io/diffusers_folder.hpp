// A diffusers pipeline folder (what DiffusionPipeline.save_pretrained writes): model_index.json naming
// the pipeline class and each component's [library, class], one sub-folder per component, and the weight
// files of each component in its variants. What a pipeline makes of the classes is the pipeline's concern.
#pragma once
#include <map>
#include <string>

#include "io/json_config.hpp"

namespace mmx {

struct DiffusersFolder {
  std::string path;
  std::string class_name;                          // "_class_name": "StableDiffusionXLPipeline"
  std::map<std::string, std::string> components;   // component name → its class ("unet" → "UNet2DConditionModel")
  JsonObject index{nlohmann::json::object(), ""};  // model_index.json, for the pipeline's own keys

  // Reads model_index.json: readable, a _class_name, every component a [library, class] pair (entries
  // that are not, such as null components or pipeline settings, are left to `index`). `path` may also be
  // a Hub id (the repo root), found in or downloaded into the Hugging Face cache (`variant` picks the
  // weights a download fetches).
  static DiffusersFolder open(const std::string& path, const std::string& variant = "");
  // The class of a component; an error naming model_index.json when the folder has no such component.
  const std::string& component_class(const std::string& name) const;
  // The path of a component's folder; an error when it is missing.
  std::string component(const std::string& name) const;
};

// The weights file of a component folder: `{stem}.safetensors` (or a sharded index), or with
// variant "fp16" `{stem}.fp16.safetensors`; the fp16 file is also taken when it is the only one; with no
// safetensors at all, the PyTorch pickle (`pytorch_model.bin` / `diffusion_pytorch_model.bin`, variant, shards).
// Neither: an error listing the safetensors files that are there.
std::string component_weights(const std::string& folder, const std::string& stem, const std::string& variant);

}  // namespace mmx
