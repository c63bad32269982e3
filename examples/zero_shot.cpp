// Zero-shot classification with a CLIP folder: labels given at run time become prompts ("a photo of a
// {}."), probabilities are the softmax of logits_per_image, as on CLIP's model card.
//   zero_shot CLIP_DIR IMAGE LABEL...
#include <cstdio>
#include <string>
#include <vector>

#include "mmx/classify.hpp"

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s CLIP_DIR IMAGE LABEL...\n", argv[0]);
    return 2;
  }
  const std::vector<std::string> labels(argv + 3, argv + argc);
  try {
    const auto clip = mmx::Model::load(argv[1]);
    const auto predictions =
        mmx::zero_shot_classify(clip, {mmx::load_image(argv[2])}, labels, "a photo of a {}.", int64_t(labels.size()));
    for (const auto& p : predictions[0]) std::printf("%-20s %.4f\n", p.label.c_str(), p.probability);
  } catch (const mmx::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
