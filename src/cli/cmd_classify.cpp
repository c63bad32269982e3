// mmx classify: ViTForImageClassification labels with probabilities.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "mmx/classify.hpp"

namespace mmx::cli {

const Command kClassifyCommand{
    "classify",
    "mmx classify --model MODEL (--image PATH)... [--labels \"cat,dog,...\" [--template T]] [--top-k K] [--json]",
    "Classify images with a classifier's labels (ViT), or zero-shot with your labels (CLIP).",
    {
        {"model", "MODEL", "a ViTForImageClassification (google/vit-base-patch16-224) or CLIP folder, or its Hub id"},
        {"image", "PATH", "an image (PNG, JPEG, WebP, GIF, TIFF, BMP), a folder of them, or a quoted pattern", true},
        skip_bad_images_option(),
        text_option("labels", "L1,L2,...", "CLIP zero-shot: the candidate labels, comma-separated"),
        text_option("template", "T", "CLIP zero-shot: the prompt, {} marks the label (default \"a photo of a {}.\")"),
        {"top-k", "K", "labels per image, most probable first (default 5)"},
        {"json", "", "print [{\"image\": PATH, \"predictions\": [{\"label\": L, \"probability\": P}, ...]}, ...]"},
    },
    R"(Probabilities are softmax(logits) over all labels. Images of any sizes go in one batch.
Zero-shot (CLIP): probabilities are softmax over the labels of logits_per_image =
exp(logit_scale) · cos(image, prompt), as in CLIP's model card.

example:
  mmx classify --model tests/data/models/vit-tiny-classifier --image tests/data/images/chelsea.png --top-k 3
)",
};

int run_classify(const Args& args) {
  const auto model = args.get("model");
  if (!model) usage_error("--model MODEL is required");
  const int64_t top_k = args.get_int("top-k", 1).value_or(5);
  std::vector<std::string> paths = collect_image_paths(args);
  std::vector<std::vector<Prediction>> results;
  const std::shared_ptr<const Model> loaded = Model::load(*model, placement_of(args));
  if (args.has("labels") || (!loaded->has_classifier() && loaded->logit_scale())) {
    std::vector<std::string> labels;
    const std::string list = args.get("labels").value_or("");
    for (size_t start = 0; start <= list.size();) {  // comma-separated, surrounding spaces trimmed
      size_t end = list.find(',', start);
      if (end == std::string::npos) end = list.size();
      std::string label = list.substr(start, end - start);
      label.erase(0, label.find_first_not_of(' '));
      label.erase(label.find_last_not_of(' ') + 1);
      if (!list.empty()) labels.push_back(label);
      start = end + 1;
    }
    const std::vector<Image> images = load_images(paths, args.has("skip-bad-images"));
    results = zero_shot_classify(loaded, images, labels, args.get("template").value_or("a photo of a {}."), top_k);
  } else {
    const ImageClassifier classifier(loaded);
    results = classifier.classify(load_images(paths, args.has("skip-bad-images")), top_k);
  }
  if (args.has("json")) {
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    for (size_t i = 0; i < paths.size(); ++i) {
      nlohmann::ordered_json predictions = nlohmann::ordered_json::array();
      for (const auto& p : results[i]) predictions.push_back({{"label", p.label}, {"probability", p.probability}});
      out.push_back({{"image", paths[i]}, {"predictions", std::move(predictions)}});
    }
    std::puts(json_text(out, 2).c_str());
    return 0;
  }
  for (size_t i = 0; i < paths.size(); ++i) {
    std::printf("%s\n", paths[i].c_str());
    for (const auto& p : results[i]) std::printf("  %8.4f  %s\n", p.probability, p.label.c_str());
  }
  return 0;
}

}  // namespace mmx::cli
