// StableDiffusionXLPipeline's folder: a diffusers folder whose pipeline class and components are the ones
// this pipeline runs (src/pipelines/sdxl_folder.cpp).
#pragma once
#include <string>

#include "io/diffusers_folder.hpp"

namespace mmx {

// Opens the folder and checks it: the pipeline class, every component the pipeline needs (tokenizers,
// text encoders, unet, vae, scheduler) named with a class this mmx implements, its folder present. Errors
// name the component and what was found.
DiffusersFolder open_sdxl_folder(const std::string& path, const std::string& variant = "");

}  // namespace mmx
