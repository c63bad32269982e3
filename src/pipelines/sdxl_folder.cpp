#include "pipelines/sdxl_folder.hpp"

#include <algorithm>
#include <vector>

#include "mmx/error.hpp"
#include "mmx/files.hpp"
#include "mmx/scheduler.hpp"
#include "models/registry.hpp"

namespace mmx {
namespace {

// The components StableDiffusionXLPipeline needs and the classes this mmx implements for each: the
// pipeline's own signature for its tokenizers and text encoders (diffusers loads either CLIP tokenizer
// class into the same tokenizer), the registry's denoisers and autoencoders, the scheduler factory's
// classes.
struct ComponentClasses {
  const char* name;
  std::vector<std::string> classes;
};
std::vector<ComponentClasses> components() {
  return {
      {"tokenizer", {"CLIPTokenizer", "CLIPTokenizerFast"}},
      {"tokenizer_2", {"CLIPTokenizer", "CLIPTokenizerFast"}},
      {"text_encoder", {"CLIPTextModel"}},
      {"text_encoder_2", {"CLIPTextModelWithProjection"}},
      {"unet", classes_for(ModelRole::Denoiser)},
      {"vae", classes_for(ModelRole::Autoencoder)},
      {"scheduler", Scheduler::known_classes()},
  };
}

}  // namespace

DiffusersFolder open_sdxl_folder(const std::string& path, const std::string& variant) {
  DiffusersFolder f = DiffusersFolder::open(path, variant);
  if (f.class_name != "StableDiffusionXLPipeline" && f.class_name != "StableDiffusionXLImg2ImgPipeline" &&
      f.class_name != "StableDiffusionXLInpaintPipeline")
    fail(f.index.source(), ": _class_name '", f.class_name, "' is not supported (this mmx runs StableDiffusionXLPipeline, "
         "StableDiffusionXLImg2ImgPipeline and StableDiffusionXLInpaintPipeline folders)");
  std::vector<ComponentClasses> needed = components();
  // The refiner's layout (stable-diffusion-xl-refiner-1.0): no first tokenizer and text encoder, both null.
  const auto null_component = [&](const char* name) {
    const auto& j = f.index.json();
    return j.contains(name) && j.at(name).is_array() && j.at(name).size() == 2 && j.at(name)[0].is_null() &&
           j.at(name)[1].is_null();
  };
  if (null_component("text_encoder") && null_component("tokenizer"))
    needed.erase(std::remove_if(needed.begin(), needed.end(),
                                [](const ComponentClasses& c) { return std::string(c.name) == "text_encoder" || std::string(c.name) == "tokenizer"; }),
                 needed.end());
  for (const auto& [name, classes] : needed) {
    const std::string& cls = f.component_class(name);
    if (std::find(classes.begin(), classes.end(), cls) == classes.end()) {
      std::string known;
      for (const auto& c : classes) known += (known.empty() ? "" : " or ") + c;
      fail(f.index.source(), ": ", name, " is a ", cls, "; this mmx implements ", known, " there");
    }
  }
  for (const auto& c : needed) f.component(c.name);  // after the classes: a wrong pipeline is the first thing to say
  return f;
}

}  // namespace mmx
