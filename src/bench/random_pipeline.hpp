// A full-size diffusers pipeline folder with random weights (src/bench/random_pipeline.cpp), loaded through
// the same code as the Hub's folders.
#pragma once
#include <cstdint>
#include <string>

#include "mmx/tensor.hpp"

namespace mmx {

// Writes a diffusers StableDiffusionXLPipeline folder with random weights (N(0, 0.02), norms 1 and 0)
// built from the configs in `configs_dir` (model_index.json and each component's config files, as the
// Hub has them), every tensor stored as `dtype` (F16: under the fp16 variant's *.fp16.safetensors
// names). Tokenizer folders without vocab.json / merges.txt take them from `vocab_dir`.
void write_random_sdxl_pipeline(const std::string& configs_dir, const std::string& vocab_dir,
                                const std::string& out_dir, DType dtype, uint64_t seed = 42);

}  // namespace mmx
