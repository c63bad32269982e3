// Image classification: ViTForImageClassification logits → softmax → the top-k labels.
#include <algorithm>
#include <functional>

#include "io/checkpoint.hpp"
#include "mmx/embed.hpp"
#include "models/model_folder.hpp"
#include "models/vit.hpp"
#include "mmx/similarity.hpp"

namespace mmx {

namespace {

class VitClassifier : public ImageClassifier {
 public:
  VitClassifier(const ModelFolder& folder, const Checkpoint& checkpoint)
      : model_(load_model<ViTForImageClassification>(ViTConfig::from_json(folder.config), checkpoint)),
        processor_(load_processor(folder)) {}

  Tensor logits(const std::vector<Image>& images) const override {
    if (images.empty()) usage_error("no images to classify");
    return model_.forward(preprocess_images(images, processor_));
  }

  std::string label(int64_t id) const override {
    auto it = model_.config().id2label.find(id);
    return it == model_.config().id2label.end() ? str("LABEL_", id) : it->second;  // transformers' default names
  }

 private:
  ViTForImageClassification model_;
  ImageProcessorConfig processor_;
};

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

std::unique_ptr<ImageClassifier> ImageClassifier::load(const std::string& model_dir) {
  const ModelFolder folder = open_model_folder(model_dir);
  if (folder.model_type != "vit")
    usage_error(model_dir, ": model_type '", folder.model_type, "' is not an image classifier (a ViT folder is)");
  const Checkpoint checkpoint = Checkpoint::open(folder.path);
  return std::make_unique<VitClassifier>(folder, checkpoint);
}

std::vector<std::vector<Prediction>> ImageClassifier::classify(const std::vector<Image>& images, int64_t top_k) const {
  Tensor probs = logits(images);
  ops::softmax_(probs);
  return top_k_predictions(probs, top_k, [&](int64_t id) { return label(id); });
}

std::vector<std::vector<Prediction>> zero_shot_classify(const std::string& model_dir, const std::vector<Image>& images,
                                                        const std::vector<std::string>& labels,
                                                        const std::string& prompt_template, int64_t top_k) {
  if (labels.empty()) usage_error("no labels: give --labels \"cat,dog,...\"");
  for (const auto& l : labels)
    if (l.empty()) usage_error("--labels holds an empty label");
  const size_t slot = prompt_template.find("{}");
  if (slot == std::string::npos) usage_error("--template '", prompt_template, "' has no {} for the label");
  std::vector<std::string> prompts;
  for (const auto& l : labels) prompts.push_back(prompt_template.substr(0, slot) + l + prompt_template.substr(slot + 2));
  const auto text = TextEmbedder::load(model_dir);
  const auto vision = ImageEmbedder::load(model_dir);
  if (!text->logit_scale()) usage_error(model_dir, ": zero-shot classification needs a CLIP model");
  EmbedOptions options;
  options.pooling = Pooling::Projection;
  Tensor probs = similarity_matrix(vision->embed(images, options).embeddings, text->embed(prompts, options).embeddings,
                                   Score::ClipLogits, text->logit_scale());  // logits_per_image [N, labels]
  softmax_(probs, SoftmaxDim::Dim1);
  return top_k_predictions(probs, top_k, [&](int64_t id) { return labels[size_t(id)]; });
}

}  // namespace mmx
