// mmx classify: ViTForImageClassification labels with probabilities.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "mmx/embed.hpp"

namespace mmx::cli {

const Command kClassifyCommand{
    "classify",
    "mmx classify --model DIR (--image PATH)... [--top-k K] [--json]",
    "Classify images with a ViTForImageClassification folder (labels from config.json's id2label).",
    {
        {"model", "DIR", "ViTForImageClassification folder (e.g. google/vit-base-patch16-224)"},
        {"image", "PATH", "a PNG/JPEG image, a folder of them, or a quoted pattern", true},
        skip_bad_images_option(),
        {"top-k", "K", "labels per image, most probable first (default 5)"},
        {"json", "", "print [{\"image\": PATH, \"predictions\": [{\"label\": L, \"probability\": P}, ...]}, ...]"},
    },
    R"(Probabilities are softmax(logits) over all labels. Images of any sizes go in one batch.

example:
  mmx classify --model tests/data/models/vit-tiny-classifier --image tests/data/images/chelsea.png --top-k 3
)",
};

int run_classify(const Args& args) {
  const auto model = args.get("model");
  if (!model) usage_error("--model DIR is required");
  const int64_t top_k = args.get_int("top-k", 1).value_or(5);
  std::vector<std::string> paths = collect_image_paths(args);
  const auto classifier = ImageClassifier::load(*model);
  const auto results = classifier->classify(load_images(paths, args.has("skip-bad-images")), top_k);
  if (args.has("json")) {
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    for (size_t i = 0; i < paths.size(); ++i) {
      nlohmann::ordered_json predictions = nlohmann::ordered_json::array();
      for (const auto& p : results[i]) predictions.push_back({{"label", p.label}, {"probability", p.probability}});
      out.push_back({{"image", paths[i]}, {"predictions", std::move(predictions)}});
    }
    std::puts(out.dump(2).c_str());
    return 0;
  }
  for (size_t i = 0; i < paths.size(); ++i) {
    std::printf("%s\n", paths[i].c_str());
    for (const auto& p : results[i]) std::printf("  %8.4f  %s\n", p.probability, p.label.c_str());
  }
  return 0;
}

}  // namespace mmx::cli
