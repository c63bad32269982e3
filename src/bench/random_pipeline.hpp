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

// Writes a transformers model folder with random weights from a real config in `data_dir`/real-configs
// (bert-base-uncased, clip-vit-base-patch32 or vit-base-patch16-224), with its real tokenizer files from
// `data_dir`/tokenizers: a full-size model to serve and load-test without downloading it.
void write_random_model_folder(const std::string& name, const std::string& data_dir, const std::string& out_dir,
                               DType dtype, uint64_t seed = 42);

}  // namespace mmx
