// What pipelines ask of a model, whatever its architecture: a text encoder, a vision encoder, an image
// classifier head, and the parts one checkpoint holds. Each model file adapts its modules to these
// (bert.cpp, vit.cpp, clip.cpp) and the registry (registry.cpp) makes them from a folder. Inputs are host
// tensors; outputs are host F32, whatever the placement.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mmx/tensor.hpp"

namespace mmx {

struct EncoderOutputs {
  Tensor last_hidden_state;  // [B, T, C]
  // [B, P]: the architecture's pooled output (BERT/ViT: the tanh pooler on the first token; CLIP: the
  // end-of-text token / the post-normed class token); undefined when the checkpoint has none.
  Tensor pooler_output;
  // With output_hidden_states: the embeddings and every layer's output, as transformers' hidden_states.
  std::vector<Tensor> hidden_states;
};

class TextEncoder {
 public:
  virtual ~TextEncoder() = default;
  // input_ids [B, T] I64, token_type_ids [B, T] (undefined: zeros; architectures without them ignore
  // it), attention_mask [B, T] (1 = token, 0 = padding; undefined: every position attends).
  virtual EncoderOutputs forward(const Tensor& input_ids, const Tensor& token_type_ids, const Tensor& attention_mask,
                                 bool output_hidden_states = false) const = 0;
  virtual int64_t max_positions() const = 0;  // the longest input the position embeddings allow
  virtual bool has_pooler() const = 0;
  // The projection of pooled outputs into a space shared with images (CLIP's text_projection).
  virtual bool has_projection() const { return false; }
  virtual Tensor project(const Tensor& pooled) const;
};

class VisionEncoder {
 public:
  virtual ~VisionEncoder() = default;
  virtual EncoderOutputs forward(const Tensor& pixel_values) const = 0;  // [B, C, H, W] F32
  virtual int64_t tokens() const = 0;     // tokens per image at the configured size (patches + class token)
  virtual int64_t image_size() const = 0;  // the configured square size (the default processor's)
  virtual bool has_pooler() const = 0;
  virtual bool has_projection() const { return false; }  // CLIP's visual_projection
  virtual Tensor project(const Tensor& pooled) const;
};

// A classification head over images (ViTForImageClassification).
class ImageClassifierHead {
 public:
  virtual ~ImageClassifierHead() = default;
  virtual Tensor logits(const Tensor& pixel_values) const = 0;  // [B, num_labels]
  virtual std::string label(int64_t id) const = 0;              // config.json's id2label, else LABEL_<id>
};

// Whatever parts one checkpoint holds, its weights bound once.
class ModelParts {
 public:
  virtual ~ModelParts() = default;
  virtual const TextEncoder* text() const { return nullptr; }
  virtual const VisionEncoder* vision() const { return nullptr; }
  virtual const ImageClassifierHead* classifier() const { return nullptr; }
  // The stored log-scale of a model whose texts and images share one space (CLIP); exp() of it scales
  // cosine similarities into logits.
  virtual std::optional<float> logit_scale() const { return std::nullopt; }
  virtual std::string description() const = 0;  // "bert: 2 layers, hidden 32, ..."
};

}  // namespace mmx
