// Downloads from the Hugging Face Hub into its cache (src/hub/hub_download.cpp, through libcurl): the
// optional hub component, linked as mmx::hub.
#pragma once
#include <string>

#include "mmx/hub_cache.hpp"

namespace mmx {

// Downloads what loading the model needs (configs, tokenizer files, the weights in one format: safetensors,
// the `variant`'s when asked, else .bin; for a diffusers pipeline model_index.json and the components it
// names) from HF_ENDPOINT (default https://huggingface.co) into the cache, as huggingface_hub lays it out,
// with HF_TOKEN (or the token file in HF_HOME). Returns the snapshot folder.
std::string download_model(const HubModelId& id, const std::string& variant = "");

// Lets every loader download a Hub model that is not cached yet (installs download_model as the
// ModelDownloader of mmx/hub_cache.hpp). The mmx command calls it at start-up.
void enable_hub_downloads();

}  // namespace mmx
