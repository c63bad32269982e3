#include "models/model_folder.hpp"

#include <algorithm>

#include "mmx/files.hpp"
#include "core/log.hpp"
#include "mmx/image_processor.hpp"
#include "mmx/error.hpp"
#include "mmx/hub_cache.hpp"

namespace mmx {

ModelFolder open_model_folder(const std::string& model) {
  const std::string path = resolve_model_path(model);  // a folder, or a Hub id found in the cache
  const std::string config_path = join_path(path, "config.json");
  if (!file_exists(config_path))
    throw Error(ErrorKind::Runtime, path + ": no config.json (not a Hugging Face model folder)",
                "a model folder holds config.json and model.safetensors, as written by save_pretrained");
  JsonObject config = JsonObject::load(config_path);
  const std::string model_type = config.require_string("model_type");
  if (model_type != "bert" && model_type != "vit" && model_type != "clip" && model_type != "clip_text_model" &&
      model_type != "clip_vision_model")
    fail(config_path, ": model_type '", model_type,
         "' is not supported by this mmx (supported: bert, vit, clip, clip_text_model, clip_vision_model)");
  return ModelFolder{path, std::move(config), model_type};
}

ImageProcessorConfig load_processor(const ModelFolder& folder) {
  const std::string path = join_path(folder.path, "preprocessor_config.json");
  if (file_exists(path)) return ImageProcessorConfig::load(path, folder.model_type);
  int64_t size = 224;
  const bool clip = folder.model_type.rfind("clip", 0) == 0;
  const JsonObject vision = clip && folder.config.has("vision_config")
                                ? JsonObject(folder.config.json().at("vision_config"), folder.config.source() + ":vision_config")
                                : folder.config;
  if (vision.has("image_size") && vision.json().at("image_size").is_number_integer()) size = vision.get_int("image_size", 224);
  ImageProcessorConfig c = ImageProcessorConfig::defaults(clip ? "CLIPImageProcessor" : "ViTImageProcessor");
  log_warn(folder.path, ": no preprocessor_config.json; using ", c.kind, "'s defaults at ", size, "×", size);
  if (clip) {
    c.shortest_edge = size;
    c.crop_height = c.crop_width = size;
  } else {
    c.height = c.width = size;
  }
  return c;
}

}  // namespace mmx
