// StableDiffusionXLPipeline's folder: a diffusers folder whose pipeline class and components are the ones
// this pipeline runs (src/pipelines/sdxl_folder.cpp).
#pragma once
#include <map>
#include <memory>
#include <string>

#include "io/checkpoint.hpp"
#include "io/diffusers_folder.hpp"
#include "mmx/placement.hpp"
#include "mmx/sdxl_prompt.hpp"

namespace mmx {

// Opens the folder and checks it: the pipeline class, every component the pipeline needs (tokenizers,
// text encoders, unet, vae, scheduler) named with a class this mmx implements, its folder present. Errors
// name the component and what was found.
DiffusersFolder open_sdxl_folder(const std::string& path, const std::string& variant = "");

// The text encoders' checkpoints by component name ("text_encoder" where the folder has it, "text_encoder_2").
std::map<std::string, Checkpoint> open_text_encoder_weights(const DiffusersFolder& f, const std::string& variant);
// The tokenizers and text encoders over checkpoints already open (sdxl_prompt.cpp): the pipeline keeps them
// open and builds encoders again over them with adapters merged in, without reading the files again.
std::unique_ptr<SDXLTextEncoders> load_sdxl_text_encoders(const DiffusersFolder& f,
                                                          const std::map<std::string, Checkpoint>& weights,
                                                          const Placement& placement);

}  // namespace mmx
