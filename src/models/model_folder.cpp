#include "models/model_folder.hpp"

#include "core/file_util.hpp"
#include "mmx/error.hpp"

namespace mmx {

ModelFolder open_model_folder(const std::string& path) {
  if (!dir_exists(path))
    throw Error(ErrorKind::Runtime, path + ": no such model folder",
                "give a folder as saved by save_pretrained (config.json + model.safetensors)");
  const std::string config_path = join_path(path, "config.json");
  if (!file_exists(config_path))
    throw Error(ErrorKind::Runtime, path + ": no config.json (not a Hugging Face model folder)",
                "a model folder holds config.json and model.safetensors, as written by save_pretrained");
  JsonObject config = JsonObject::load(config_path);
  const std::string model_type = config.require_string("model_type");
  if (model_type != "bert")
    fail(config_path, ": model_type '", model_type, "' is not supported by this mmx (supported: bert)");
  return ModelFolder{path, std::move(config), model_type};
}

}  // namespace mmx
