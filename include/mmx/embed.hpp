// Text embeddings: tokenizer + encoder + pooling, as the lab computes them.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mmx/image.hpp"
#include "mmx/image_processor.hpp"
#include "mmx/tensor.hpp"
#include "mmx/tokenizer.hpp"

namespace mmx {

enum class Pooling {
  Cls,        // last_hidden_state[:, 0]
  Pooler,     // pooler_output (dense + tanh on [CLS])
  Mean,       // masked mean over all real tokens
  MeanNoCls,  // masked mean over real tokens except [CLS]: what the lab means
  Lab,        // the lab verbatim: sum(h[:, 1:], 1) / (mask.sum(1) − 1), padding rows included in the sum
  Projection, // CLIP: get_text_features / get_image_features (pooled output through the projection)
  Pooled,     // CLIP: the pooled output before the projection
};
// "cls", "pooler", "mean", "mean-no-cls", "lab", "projection", "pooled"
Pooling pooling_from_name(const std::string& name);
const char* pooling_name(Pooling pooling);

struct EmbedOptions {
  std::optional<Pooling> pooling;        // default: mean-no-cls (BERT, ViT), projection (CLIP)
  bool normalize = false;                // L2-normalise each embedding
  bool token_embeddings = false;         // also return last_hidden_state, input_ids, attention_mask
  std::optional<int64_t> max_length;     // truncation; default: the model's limit
  int64_t max_batch_tokens = 16384;      // larger batches are split (padded alike, so results do not change)
};

struct EmbedResult {
  Pooling pooling;           // the pooling used
  Tensor embeddings;         // [N, D] F32
  Tensor last_hidden_state;  // [N, L, D] (token_embeddings)
  Tensor input_ids;          // [N, L] I64 (texts)
  Tensor attention_mask;     // [N, L] I64 (texts)
  Tensor pixel_values;       // [N, 3, H, W] F32 (images, with token_embeddings)
};

class TextEmbedder {
 public:
  // Loads a model folder (config.json, safetensors weights, tokenizer files).
  static std::unique_ptr<TextEmbedder> load(const std::string& model_dir);
  virtual ~TextEmbedder() = default;
  virtual EmbedResult embed(const std::vector<std::string>& texts, const EmbedOptions& options) const = 0;
  virtual const Tokenizer& tokenizer() const = 0;
  virtual std::string description() const = 0;  // "bert: 2 layers, hidden 32, ..."
  virtual std::optional<float> logit_scale() const { return std::nullopt; }  // CLIP's stored log-scale
};

// Image embeddings from a ViT folder (config.json, safetensors weights, preprocessor_config.json).
// Poolings: cls, pooler, mean (all tokens), mean-no-cls (the patches: the lab's image_avg_embeds);
// `lab` is mean-no-cls here, as images have no padding.
class ImageEmbedder {
 public:
  static std::unique_ptr<ImageEmbedder> load(const std::string& model_dir);
  virtual ~ImageEmbedder() = default;
  // Images of any sizes; each is preprocessed on its own, so no image's result depends on the others.
  virtual EmbedResult embed(const std::vector<Image>& images, const EmbedOptions& options) const = 0;
  virtual const ImageProcessorConfig& processor() const = 0;
  virtual std::string description() const = 0;
  virtual std::optional<float> logit_scale() const { return std::nullopt; }
};

// A model folder's image processor (preprocessor_config.json, or ViT's defaults at the model's size).
struct ModelProcessor {
  std::string model_type;
  ImageProcessorConfig config;
};
ModelProcessor load_model_processor(const std::string& model_dir);

// "bert", "vit", ...: the model_type of a model folder's config.json (errors name what is wrong).
std::string model_type_of(const std::string& model_dir);

struct Prediction {
  int64_t id;
  std::string label;
  float probability;
};

// ViTForImageClassification: softmax over the logits, the top_k labels of each image, most probable first.
class ImageClassifier {
 public:
  static std::unique_ptr<ImageClassifier> load(const std::string& model_dir);
  virtual ~ImageClassifier() = default;
  virtual Tensor logits(const std::vector<Image>& images) const = 0;  // [N, num_labels]
  std::vector<std::vector<Prediction>> classify(const std::vector<Image>& images, int64_t top_k) const;
  virtual std::string label(int64_t id) const = 0;
};

// CLIP zero-shot classification: each label becomes a prompt (`prompt_template` with "{}" replaced),
// probabilities are softmax over the labels of logits_per_image, as on CLIP's model card.
std::vector<std::vector<Prediction>> zero_shot_classify(const std::string& model_dir, const std::vector<Image>& images,
                                                        const std::vector<std::string>& labels,
                                                        const std::string& prompt_template, int64_t top_k);

}  // namespace mmx
