// Image classification: a classifier head's logits → softmax → the top-k labels; or zero-shot, the
// softmax over labels of a joint model's logits_per_image.
#include "mmx/classify.hpp"

#include <algorithm>
#include <functional>

#include "backend/ops.hpp"
#include "mmx/embed.hpp"
#include "mmx/similarity.hpp"
#include "models/registry.hpp"

namespace mmx {

namespace {

// The top_k entries of each row of probs [N, labels], most probable first (ties keep label order).
std::vector<std::vector<Prediction>> top_k_predictions(const Tensor& probs, int64_t top_k,
                                                       const std::function<std::string(int64_t)>& label) {
  const int64_t n = probs.dim(0), labels = probs.dim(1);
  std::vector<std::vector<Prediction>> out(static_cast<size_t>(n));
  std::vector<int64_t> order(static_cast<size_t>(labels));
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < labels; ++j) order[j] = j;
    const float* p = probs.data<float>() + i * labels;
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return p[a] > p[b]; });
    for (int64_t j = 0; j < std::min(top_k, labels); ++j) out[i].push_back({order[j], label(order[j]), p[order[j]]});
  }
  return out;
}

}  // namespace

ImageClassifier::ImageClassifier(std::shared_ptr<const Model> model) : model_(std::move(model)) {
  if (!model_->has_classifier())
    usage_error(model_->path(), ": a ", model_->architecture(), " model without a classifier head is not an image classifier",
                model_->logit_scale() ? " (it classifies zero-shot: give --labels)" : " (a ViTForImageClassification folder is)");
}

std::unique_ptr<ImageClassifier> ImageClassifier::load(const std::string& model, const Placement& placement) {
  return std::make_unique<ImageClassifier>(Model::load(model, placement));
}

Tensor ImageClassifier::logits(const std::vector<Image>& images) const {
  if (images.empty()) usage_error("no images to classify");
  Tensor logits = model_->parts().classifier()->logits(preprocess_images(images, model_->image_processor()));
  if (!all_finite(logits))
    throw Error(ErrorKind::Runtime, model_->architecture() + " produced non-finite logits (NaN or inf)",
                "the model's config.json (layer_norm_eps, image_std, rescale_factor) or its weights do not make a working model");
  return logits;
}

std::string ImageClassifier::label(int64_t id) const { return model_->parts().classifier()->label(id); }

std::vector<std::vector<Prediction>> ImageClassifier::classify(const std::vector<Image>& images, int64_t top_k) const {
  Tensor probs = logits(images);
  ops::softmax_(probs);
  return top_k_predictions(probs, top_k, [&](int64_t id) { return label(id); });
}

std::vector<std::vector<Prediction>> zero_shot_classify(const std::shared_ptr<const Model>& shared,
                                                        const std::vector<Image>& images,
                                                        const std::vector<std::string>& labels,
                                                        const std::string& prompt_template, int64_t top_k) {
  if (labels.empty()) usage_error("no labels: give --labels \"cat,dog,...\"");
  for (const auto& l : labels)
    if (l.empty()) usage_error("--labels holds an empty label");
  const size_t slot = prompt_template.find("{}");
  if (slot == std::string::npos) usage_error("--template '", prompt_template, "' has no {} for the label");
  const Model& model = *shared;
  if (!model.logit_scale() || !model.has_text() || !model.has_vision())
    usage_error(model.path(), ": zero-shot classification needs a model whose texts and images share one space (CLIP)");
  std::vector<std::string> prompts;
  for (const auto& l : labels) prompts.push_back(prompt_template.substr(0, slot) + l + prompt_template.substr(slot + 2));
  const TextEmbedder text(shared);  // both sides share the one loaded model
  const ImageEmbedder vision(shared);
  EmbedOptions options;  // the joint space: the model's default pooling (CLIP: the projections)
  Tensor probs = similarity_matrix(vision.embed(images, options).embeddings, text.embed(prompts, options).embeddings,
                                   model.default_score(), model.logit_scale());  // logits_per_image [N, labels]
  softmax_(probs, SoftmaxDim::Dim1);
  return top_k_predictions(probs, top_k, [&](int64_t id) { return labels[size_t(id)]; });
}

}  // namespace mmx
