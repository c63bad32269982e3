// A model folder opened once (src/pipelines/model.cpp): config.json's architecture looked up in the
// registry, the weights of every part its checkpoint holds (text and/or vision towers, projections, a
// classifier head) bound at one placement, its tokenizer and image processor. Embedders, classifiers and
// similarity are built on a Model, so a CLIP folder is read and loaded once however many of its sides are
// used: Model::load hands out the model already loaded for the same folder and placement as long as
// someone holds it.
#pragma once
#include <memory>
#include <optional>
#include <string>

#include "mmx/embedding_space.hpp"
#include "mmx/image_processor.hpp"
#include "mmx/placement.hpp"
#include "mmx/tokenizer.hpp"

namespace mmx {

class ModelParts;
struct Architecture;
struct SentenceTransformersFolder;

class Model {
 public:
  // A folder written by save_pretrained, or a Hub id (found in the Hugging Face cache; downloaded once
  // where downloads are enabled, mmx/hub_download.hpp).
  static std::shared_ptr<const Model> load(const std::string& model, const Placement& placement = {});
  ~Model();

  const std::string& path() const { return path_; }  // the folder (a Hub id's cached snapshot)
  const Placement& placement() const { return placement_; }
  std::string architecture() const;  // the display name of its architecture: "BERT", "CLIP"
  std::string description() const;   // "bert: 2 layers, hidden 32, ..."
  bool has_text() const;
  bool has_vision() const;
  bool has_classifier() const;
  // The stored log-scale of a model whose texts and images share one space (CLIP): it can compare
  // texts with images and classify images by labels it was never trained on.
  std::optional<float> logit_scale() const;
  // The model's own: `modules` for a sentence-transformers folder. A usage error when it has no text side.
  Pooling default_text_pooling() const;
  Pooling default_image_pooling() const;  // ... no vision side
  // How its embeddings are compared: dot, CLIP's logits, or a sentence-transformers folder's
  // similarity_fn_name (cosine when unset).
  Score default_score() const;

  const Tokenizer& tokenizer() const;                    // a usage error when the model has no text side
  const ImageProcessorConfig& image_processor() const;   // ... no vision side

  // For the pipelines (pipelines/*.cpp): the registry entry and the loaded parts.
  const Architecture& registry_entry() const { return *architecture_; }
  const ModelParts& parts() const { return *parts_; }
  // The modules after the Transformer of a sentence-transformers folder (modules.json); nullptr otherwise.
  const SentenceTransformersFolder* sentence_transformers() const { return sentence_transformers_.get(); }

 private:
  Model() = default;
  std::string path_;
  Placement placement_;
  const Architecture* architecture_ = nullptr;
  std::unique_ptr<ModelParts> parts_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::optional<ImageProcessorConfig> image_processor_;
  std::shared_ptr<const SentenceTransformersFolder> sentence_transformers_;
};

// What a model folder can do, from its config.json alone (no weight read): for checks before any work.
struct ModelInfo {
  std::string path;          // the folder (a Hub id's cached snapshot)
  std::string architecture;  // "BERT", "CLIP"
  bool texts = false, images = false;  // what it embeds
  bool joint = false;        // texts and images in one space (zero-shot, cross-modal similarity)
  bool classifier = false;   // config.json names a classification head (…ForImageClassification)
  // A sentence-transformers folder's similarity_fn_name ("cosine" when it names none); empty otherwise.
  std::string sentence_transformers_similarity;
};
ModelInfo inspect_model(const std::string& model);

// The tokenizer of a model or tokenizer folder as AutoTokenizer finds it: tokenizer_config.json's
// tokenizer_class, else the tokenizer of config.json's architecture. Loads no weights.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& model);
// The image processor of a model folder: its preprocessor_config.json (a folder holding only that file,
// or a model mmx cannot run, still preprocesses), else the default processor of its architecture at the
// model's image size. Loads no weights.
ImageProcessorConfig load_image_processor(const std::string& model);

}  // namespace mmx
