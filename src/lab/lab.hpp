// The lab's whole study in one call (src/lab/lab.cpp): unaligned BERT × ViT embeddings versus CLIP's joint space,
// as similarity matrices (A @ B.T then softmax over dim 0) and the figures that show them.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "mmx/embed.hpp"
#include "mmx/placement.hpp"
#include "mmx/plot/render.hpp"
#include "mmx/tensor.hpp"

namespace mmx {

// The texts used when none are given: captions that describe the repository's four photos in order
// (tests/data/images: astronaut.png, chelsea.png, coffee.png, rocket.jpg), so the diagonal check means
// something on them, and the lab's own dialogue.
const std::vector<std::string>& lab_default_captions();  // An astronaut in an orange space suit, ...
const std::vector<std::string>& lab_default_dialogue();  // Cats don't usually, like water, ...
// The lab's own captions, which describe the lab's photos (not in this repository): what its figures show.
const std::vector<std::string>& lab_original_captions();  // Cat with paint, rock statue, frogs on leaf, jellyfish

struct LabInputs {
  std::vector<std::string> image_labels;  // one per image, for the figures
  std::vector<Image> images;              // at least two
  std::vector<std::string> captions, dialogue;
  std::string text_model, image_model, clip_model;  // model folders (BERT, ViT, CLIP in the lab)
  Pooling text_pooling = Pooling::Lab;  // the lab's formula (or mean-no-cls, the masked mean)
  Placement placement;                   // where the three models run
};

struct LabResult {
  // Each [rows, cols] F32, rows being the first-named set, softmax over dim 0 (each column sums to 1).
  Tensor image_image, captions_image, dialogue_captions, dialogue_image, clip_captions_image, clip_dialogue_image;
};

using LabProgress = void (*)(const std::string& step);

// Checks from the folders' configs alone (no weight read) that each model can play its part: the text
// model embeds texts, the image model images, the CLIP model both in one space. Errors name the option.
void check_lab_models(const LabInputs& inputs);
// The lab's first half: captions and dialogue in one padded batch (as the lab does, which matters for its
// pooling) and the images (mean of the patch tokens) → image_image, captions_image, dialogue_captions,
// dialogue_image. The second: everything again with CLIP → clip_captions_image, clip_dialogue_image.
// `progress` (may be null) is told each step.
void run_lab_bert_vit(const LabInputs& inputs, LabResult& result, LabProgress progress = nullptr);
void run_lab_clip(const LabInputs& inputs, LabResult& result, LabProgress progress = nullptr);
// Both, after check_lab_models.
LabResult run_lab(const LabInputs& inputs, LabProgress progress = nullptr);

// Is caption i's best image image i? "Best" is the highest entry of row i of the matrix as drawn
// (captions × images, softmax over dim 0), so the check reads the way the figure does.
struct DiagonalMatch {
  int matched = 0, pairs = 0;       // pairs = min(#captions, #images)
  std::vector<int> best;           // per caption: the index of its best image
};
DiagonalMatch diagonal_match(const Tensor& matrix);

// The lab's figures, drawn the right way round (rows labelled with the rows' set):
// 2×2 image×image, captions×image, dialogue×captions, dialogue×image; and CLIP's 1×2.
plot::Figure lab_bert_vit_figure(const LabInputs& inputs, const LabResult& result, double dpi = 100);
plot::Figure lab_clip_figure(const LabInputs& inputs, const LabResult& result, double dpi = 100);

// A matrix as a heatmap panel titled "Similarity between {rows_name} and {cols_name} Embeddings".
plot::Heatmap similarity_heatmap(const Tensor& matrix, const std::vector<std::string>& row_labels,
                                 const std::vector<std::string>& col_labels, const std::string& rows_name,
                                 const std::string& cols_name);

}  // namespace mmx
