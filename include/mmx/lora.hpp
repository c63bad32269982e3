// LoRA adapters chosen for a generation (src/pipelines/lora_options.cpp): files with weights, from
// `--lora FILE[:WEIGHT]` or from AUTOMATIC1111's `<lora:name:weight>` tags in a prompt. The pipeline merges
// them into its models (src/models/lora.hpp).
#pragma once
#include <string>
#include <vector>

namespace mmx {

struct LoraWeight {
  std::string path;     // a .safetensors file
  double weight = 1.0;  // the adapter's multiplier: scale = weight · alpha / rank
  bool operator==(const LoraWeight& o) const { return path == o.path && weight == o.weight; }
};

// "FILE[:WEIGHT]" (the weight after the last ':' when it parses as a number, so "C:\x.safetensors" and
// "a:b.safetensors" stay paths). The file must exist.
LoraWeight parse_lora_option(const std::string& spec);

// The adapter NAME.safetensors in `lora_dir` or a folder below it (as the web UI finds it), at `weight`
// (within ±10). An unknown name or an out-of-range weight is an error that names it.
LoraWeight find_lora(const std::string& name, double weight, const std::string& lora_dir);

struct PromptLoras {
  std::string prompt;             // without the tags
  std::vector<LoraWeight> loras;  // in the order written
};
// Takes A1111's `<lora:NAME>` and `<lora:NAME:WEIGHT>` tags out of a prompt; NAME is a file NAME.safetensors
// in `lora_dir` or a folder below it (as the web UI finds it). A tag without a directory, an unknown name or
// a malformed weight is an error that names it.
PromptLoras extract_prompt_loras(const std::string& prompt, const std::string& lora_dir);

}  // namespace mmx
