// The lab's similarity matrix: texts × images by dot product, softmax over dim 0 (each column sums to 1),
// with a CLIP folder (get_text_features / get_image_features).
//   similarity CLIP_DIR IMAGE... -- TEXT...
#include <cstdio>
#include <string>
#include <vector>

#include "mmx/embed.hpp"
#include "mmx/similarity.hpp"

int main(int argc, char** argv) {
  std::vector<std::string> images, texts;
  bool after = false;
  for (int i = 2; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--") after = true;
    else (after ? texts : images).push_back(arg);
  }
  if (argc < 2 || images.empty() || texts.empty()) {
    std::fprintf(stderr, "usage: %s CLIP_DIR IMAGE... -- TEXT...\n", argv[0]);
    return 2;
  }
  try {
    const auto clip = mmx::Model::load(argv[1]);
    std::vector<mmx::Image> decoded;
    for (const auto& path : images) decoded.push_back(mmx::load_image(path));
    const mmx::EmbedOptions options;
    const mmx::Tensor t = mmx::TextEmbedder(clip).embed(texts, options).embeddings;
    const mmx::Tensor v = mmx::ImageEmbedder(clip).embed(decoded, options).embeddings;
    mmx::Tensor m = mmx::similarity_matrix(t, v, mmx::Score::Dot);  // rows: texts, columns: images
    mmx::softmax_(m, mmx::SoftmaxDim::Dim0);
    for (size_t r = 0; r < texts.size(); ++r) {
      std::printf("%-28s", texts[r].c_str());
      for (size_t c = 0; c < images.size(); ++c) std::printf(" %8.4f", m.data<float>()[r * images.size() + c]);
      std::printf("\n");
    }
  } catch (const mmx::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
