// StableDiffusionXLPipeline's folder and encode_prompt (diffusers 0.30): each prompt goes through both
// CLIP tokenizers (max_length 77, truncation) and both text encoders *without* an attention mask (the
// pipeline passes none, so padding is attended under the causal mask); the penultimate hidden states are
// concatenated on the feature axis and text_encoder_2's projected pooled output is the pooled embedding.
#include <algorithm>
#include <filesystem>
#include <optional>

#include "mmx/files.hpp"
#include "core/log.hpp"
#include "io/checkpoint.hpp"
#include "io/json_config.hpp"
#include "mmx/error.hpp"
#include "mmx/hub_cache.hpp"
#include "mmx/sdxl_prompt.hpp"
#include "pipelines/sdxl_folder.hpp"
#include "mmx/tokenizer.hpp"
#include "models/registry.hpp"

namespace mmx {
namespace {

// One of the pipeline's tokenizer + text encoder pairs.
struct PromptEncoder {
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<ModelParts> model;
  const TextEncoder* text = nullptr;
};

PromptEncoder load_encoder(const DiffusersFolder& f, const std::string& tokenizer, const std::string& encoder,
                           const Checkpoint& weights, const Placement& placement) {
  const ModelFolder folder = open_model_folder(f.component(encoder));
  const Architecture& a = *folder.architecture;
  PromptEncoder e;
  e.tokenizer = Tokenizer::load(f.component(tokenizer));
  if (a.load) e.model = a.load(folder.config, weights, placement, HalfWeights::AsStored);
  e.text = e.model ? e.model->text() : nullptr;
  if (!e.text) fail(folder.path, ": a ", a.display_name, " model without a text encoder cannot encode prompts");
  return e;
}

class SDXLTextEncodersImpl final : public SDXLTextEncoders {
 public:
  // `one` is absent in a refiner's folder: its prompt is text_encoder_2's alone.
  SDXLTextEncodersImpl(std::optional<PromptEncoder> one, PromptEncoder two, bool force_zeros)
      : one_(std::move(one)), two_(std::move(two)), force_zeros_(force_zeros) {
    if (!two_.text->has_projection())
      fail("text_encoder_2 has no text_projection (SDXL's second encoder is a CLIPTextModelWithProjection)");
  }

  SDXLPromptEmbeds encode(const std::string& prompt, const std::optional<std::string>& negative_prompt) const override {
    SDXLPromptEmbeds out;
    out.prompt_embeds = encode_one(prompt, &out.input_ids, &out.input_ids_2, &out.pooled_prompt_embeds);
    if (!negative_prompt && force_zeros_) {
      out.negative_prompt_embeds = Tensor::zeros(out.prompt_embeds.shape());
      out.negative_pooled_prompt_embeds = Tensor::zeros(out.pooled_prompt_embeds.shape());
    } else {
      Tensor ids, ids_2;
      out.negative_prompt_embeds = encode_one(negative_prompt.value_or(""), &ids, &ids_2, &out.negative_pooled_prompt_embeds);
    }
    return out;
  }

 private:
  // One text through both encoders (or the second alone): [1, 77, C1 + C2], with text_encoder_2's
  // projected pooled output.
  Tensor encode_one(const std::string& text, Tensor* ids_1, Tensor* ids_2, Tensor* pooled) const {
    std::vector<Tensor> states;
    std::vector<const PromptEncoder*> encoders;
    if (one_) encoders.push_back(&*one_);
    encoders.push_back(&two_);
    for (size_t k = 0; k < encoders.size(); ++k) {
      const bool second = encoders[k] == &two_;
      const Tokenizer& tok = *encoders[k]->tokenizer;
      const int64_t max_length = tok.model_max_length();
      const int64_t full = static_cast<int64_t>(tok.encode(text).input_ids.size());
      if (full > max_length)
        log_warn("the prompt is ", full, " tokens; CLIP reads ", max_length, ", so the rest was cut (as diffusers does)");
      const Tensor ids = tok.encode_batch({text}, Padding::MaxLength, max_length).input_ids();
      *(second ? ids_2 : ids_1) = ids;
      const EncoderOutputs o = encoders[k]->text->forward(ids, Tensor(), Tensor(), /*output_hidden_states=*/true);
      states.push_back(o.hidden_states[o.hidden_states.size() - 2]);  // hidden_states[-2]
      if (second) *pooled = encoders[k]->text->project(o.pooler_output);
    }
    if (states.size() == 1) return states[0];
    const int64_t t = states[0].dim(1), c1 = states[0].dim(2), c2 = states[1].dim(2);
    if (states[1].dim(1) != t) fail("the two tokenizers give ", t, " and ", states[1].dim(1), " tokens");
    Tensor cat = Tensor::empty({1, t, c1 + c2});
    for (int64_t i = 0; i < t; ++i) {
      std::copy_n(states[0].data<float>() + i * c1, c1, cat.data<float>() + i * (c1 + c2));
      std::copy_n(states[1].data<float>() + i * c2, c2, cat.data<float>() + i * (c1 + c2) + c1);
    }
    return cat;
  }

  std::optional<PromptEncoder> one_;
  PromptEncoder two_;
  bool force_zeros_;
};

}  // namespace

std::map<std::string, Checkpoint> open_text_encoder_weights(const DiffusersFolder& f, const std::string& variant) {
  std::map<std::string, Checkpoint> weights;
  for (const std::string name : {"text_encoder", "text_encoder_2"})
    if (f.components.count(name)) weights.emplace(name, Checkpoint::open(component_weights(f.component(name), "model", variant)));
  return weights;
}

std::unique_ptr<SDXLTextEncoders> load_sdxl_text_encoders(const DiffusersFolder& f,
                                                          const std::map<std::string, Checkpoint>& weights,
                                                          const Placement& placement) {
  std::optional<PromptEncoder> one;
  if (f.components.count("text_encoder")) one = load_encoder(f, "tokenizer", "text_encoder", weights.at("text_encoder"), placement);
  return std::make_unique<SDXLTextEncodersImpl>(std::move(one),
                                                load_encoder(f, "tokenizer_2", "text_encoder_2", weights.at("text_encoder_2"), placement),
                                                f.index.get_bool("force_zeros_for_empty_prompt", true));
}

std::unique_ptr<SDXLTextEncoders> SDXLTextEncoders::load(const std::string& pipeline_folder, const std::string& variant,
                                                         const Placement& placement) {
  placement.check();
  const DiffusersFolder f = open_sdxl_folder(pipeline_folder, variant);
  return load_sdxl_text_encoders(f, open_text_encoder_weights(f, variant), placement);
}

Tensor sdxl_add_time_ids(int64_t original_height, int64_t original_width, int64_t crop_top, int64_t crop_left,
                         int64_t target_height, int64_t target_width) {
  return Tensor::from_vector(
      std::vector<float>{float(original_height), float(original_width), float(crop_top), float(crop_left),
                         float(target_height), float(target_width)},
      {1, 6});
}

}  // namespace mmx
