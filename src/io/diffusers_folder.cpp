#include "io/diffusers_folder.hpp"

#include <filesystem>

#include "mmx/error.hpp"
#include "mmx/files.hpp"
#include "mmx/hub_cache.hpp"

namespace mmx {

DiffusersFolder DiffusersFolder::open(const std::string& model, const std::string& variant) {
  const std::string path = resolve_model_path(model, variant);  // a folder, or a Hub id (the repo root) in the cache
  const std::string index_path = join_path(path, "model_index.json");
  if (!file_exists(index_path))
    throw Error(ErrorKind::Runtime, path + ": no model_index.json (not a diffusers pipeline folder)",
                "a pipeline folder is what DiffusionPipeline.save_pretrained writes: model_index.json + one folder per component");
  DiffusersFolder f;
  f.index = JsonObject::load(index_path);
  f.path = path;
  f.class_name = f.index.require_string("_class_name");
  for (const auto& [name, value] : f.index.json().items())
    if (name.empty() || name[0] != '_') {
      if (value.is_array() && value.size() == 2 && value[0].is_string() && value[1].is_string())
        f.components[name] = value[1].get<std::string>();
    }
  return f;
}

const std::string& DiffusersFolder::component_class(const std::string& name) const {
  const auto it = components.find(name);
  if (it == components.end()) fail(index.source(), ": no component '", name, "' (a [library, class] pair)");
  return it->second;
}

std::string DiffusersFolder::component(const std::string& name) const {
  const std::string dir = join_path(path, name);
  if (!dir_exists(dir)) fail(path, ": the component folder '", name, "' is missing");
  return dir;
}

std::string component_weights(const std::string& folder, const std::string& stem, const std::string& variant) {
  if (!variant.empty() && variant != "fp16") usage_error("unknown weight variant '", variant, "' (use fp16, or none)");
  const std::string plain = join_path(folder, stem + ".safetensors"), index = plain + ".index.json";
  const std::string fp16 = join_path(folder, stem + ".fp16.safetensors");
  // PyTorch pickles only when there are no safetensors (as diffusers prefers them): transformers names
  // them pytorch_model.bin, diffusers diffusion_pytorch_model.bin.
  const std::string bin_stem = stem == "model" ? "pytorch_model" : stem;
  const std::string bin = join_path(folder, bin_stem + ".bin"), bin_index = bin + ".index.json";
  const std::string bin16 = join_path(folder, bin_stem + ".fp16.bin");
  if (variant == "fp16") {
    if (file_exists(fp16)) return fp16;
    if (file_exists(bin16)) return bin16;
    fail(folder, ": no ", stem, ".fp16.safetensors (or ", bin_stem, ".fp16.bin) for the fp16 variant");
  }
  for (const std::string& candidate : {plain, index, fp16, bin, bin_index, bin16})
    if (file_exists(candidate)) return candidate;  // only the variant there: used, as diffusers does with a warning
  std::string found;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(folder, ec))
    if (e.path().extension() == ".safetensors" || e.path().extension() == ".bin")
      found += (found.empty() ? "" : ", ") + e.path().filename().string();
  fail(folder, ": no ", stem, ".safetensors or ", stem, ".fp16.safetensors (found: ", found.empty() ? "none" : found, ")");
}

}  // namespace mmx
