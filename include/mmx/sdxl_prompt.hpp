// Stable Diffusion XL's prompt encoding, as diffusers' StableDiffusionXLPipeline.encode_prompt
// (src/pipelines/sdxl_prompt.cpp): both CLIP tokenizers and text encoders of a pipeline folder.
#pragma once
#include <memory>
#include <optional>
#include <string>

#include "mmx/placement.hpp"
#include "mmx/tensor.hpp"

namespace mmx {

struct SDXLPromptEmbeds {
  Tensor prompt_embeds;           // [1, 77, C1 + C2]: both encoders' penultimate hidden states, concatenated
  Tensor pooled_prompt_embeds;    // [1, P]: text_encoder_2's projected pooled output
  Tensor negative_prompt_embeds, negative_pooled_prompt_embeds;
  Tensor input_ids, input_ids_2;  // [1, 77] I64
};

class SDXLTextEncoders {
 public:
  // The two tokenizers and text encoders of an SDXL pipeline folder ("" or "fp16" variant), at a placement.
  static std::unique_ptr<SDXLTextEncoders> load(const std::string& pipeline_folder, const std::string& variant = "",
                                                const Placement& placement = {});
  virtual ~SDXLTextEncoders() = default;
  // encode_prompt with one image per prompt and classifier-free guidance: with no negative prompt and
  // force_zeros_for_empty_prompt the negative embeddings are zeros; an explicit "" is encoded.
  // Prompts over 77 tokens are cut with a warning, as diffusers does.
  virtual SDXLPromptEmbeds encode(const std::string& prompt, const std::optional<std::string>& negative_prompt) const = 0;
};

// add_time_ids: original size, crop offset and target size, (height, width) each, as [1, 6] F32.
Tensor sdxl_add_time_ids(int64_t original_height, int64_t original_width, int64_t crop_top, int64_t crop_left,
                         int64_t target_height, int64_t target_width);

}  // namespace mmx
