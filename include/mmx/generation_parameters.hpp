// A generated image's parameters in the text AUTOMATIC1111's web UI writes into its PNGs (the "parameters"
// chunk, src/pipelines/generation_parameters.cpp), so that other tools read mmx's images and mmx reruns
// theirs:
//   <prompt>
//   Negative prompt: <negative>
//   Steps: 30, Sampler: DPM++ 2M Karras, CFG scale: 5, Seed: 7, Size: 1024x1024, Model: sdxl, Version: mmx 0.1
// Values holding ',', ':' or a newline are JSON-quoted, as A1111's quote() does.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace mmx {

struct GenerationParameters {
  std::string prompt;
  std::optional<std::string> negative_prompt;  // none: the line is left out
  // Every "Key: value" of the last line in order (Steps, Sampler, CFG scale, Seed, Size, Model, ...).
  std::vector<std::pair<std::string, std::string>> fields;

  std::optional<std::string> get(const std::string& key) const;
  void set(const std::string& key, const std::string& value);  // replaces or appends

  // The fields every generated image has, in A1111's order: Steps, Sampler, CFG scale, Seed (when the
  // noise came from one), Size, Model.
  static GenerationParameters basic(const std::string& prompt, const std::optional<std::string>& negative_prompt, int64_t steps,
                                    const std::string& sampler, double guidance, std::optional<uint64_t> seed, int64_t width,
                                    int64_t height, const std::string& model);

  std::string to_text() const;
  // A1111's parse_generation_parameters: the last line is the fields when it holds at least three
  // "Key: value" pairs; the lines before are the prompt up to a line starting "Negative prompt:".
  // Text without such a line is an error (it is no generation's parameters).
  static GenerationParameters parse(const std::string& text, const std::string& source);
};

}  // namespace mmx
