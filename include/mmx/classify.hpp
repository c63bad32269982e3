// Image classification (src/pipelines/classify.cpp): a classifier head's labels (ViTForImageClassification),
// or zero-shot over labels given at run time with a model whose texts and images share one space (CLIP).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mmx/image.hpp"
#include "mmx/model.hpp"

namespace mmx {

struct Prediction {
  int64_t id;
  std::string label;
  float probability;
};

// Softmax over the head's logits, the top_k labels of each image, most probable first.
class ImageClassifier {
 public:
  explicit ImageClassifier(std::shared_ptr<const Model> model);  // a usage error when it has no head
  static std::unique_ptr<ImageClassifier> load(const std::string& model, const Placement& placement = {});
  Tensor logits(const std::vector<Image>& images) const;  // [N, num_labels]
  std::vector<std::vector<Prediction>> classify(const std::vector<Image>& images, int64_t top_k) const;
  std::string label(int64_t id) const;

 private:
  std::shared_ptr<const Model> model_;
};

// Zero-shot classification: each label becomes a prompt (`prompt_template` with "{}" replaced);
// probabilities are the softmax over the labels of logits_per_image, as on CLIP's model card.
std::vector<std::vector<Prediction>> zero_shot_classify(const std::shared_ptr<const Model>& model,
                                                        const std::vector<Image>& images,
                                                        const std::vector<std::string>& labels,
                                                        const std::string& prompt_template, int64_t top_k);

}  // namespace mmx
