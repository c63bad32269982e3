// Embeddings of texts and images with one model folder (a CLIP folder embeds both; a BERT folder texts,
// a ViT folder images), as Hugging Face computes them.
//   embed MODEL_DIR [--text T]... [--image PATH]...
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "mmx/embed.hpp"

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s MODEL_DIR (--text T | --image PATH)...\n", argv[0]);
    return 2;
  }
  std::vector<std::string> texts;
  std::vector<mmx::Image> images;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--text") texts.push_back(argv[i + 1]);
    else if (flag == "--image") images.push_back(mmx::load_image(argv[i + 1]));
  }
  try {
    // One model, loaded once: both embedders share it.
    const auto model = mmx::Model::load(argv[1]);
    const mmx::EmbedOptions options;  // the model's default pooling (CLIP: the projections)
    auto print = [](const char* what, const mmx::Tensor& e) {
      for (int64_t r = 0; r < e.dim(0); ++r) {
        const float* row = e.data<float>() + r * e.dim(1);
        double norm = 0;
        for (int64_t i = 0; i < e.dim(1); ++i) norm += double(row[i]) * row[i];
        std::printf("%s %lld: %lld values, first %.6f, norm %.6f\n", what, static_cast<long long>(r),
                    static_cast<long long>(e.dim(1)), row[0], std::sqrt(norm));
      }
    };
    std::printf("%s\n", model->description().c_str());
    if (!texts.empty()) print("text", mmx::TextEmbedder(model).embed(texts, options).embeddings);
    if (!images.empty()) print("image", mmx::ImageEmbedder(model).embed(images, options).embeddings);
  } catch (const mmx::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
