#include "lab/lab.hpp"

#include <algorithm>

#include "mmx/error.hpp"
#include "mmx/similarity.hpp"

namespace mmx {

const std::vector<std::string>& lab_default_captions() {
  static const std::vector<std::string> texts = {"An astronaut in an orange space suit", "A tabby cat",
                                                 "A cup of espresso on a saucer", "A rocket on the launch pad"};
  return texts;
}

const std::vector<std::string>& lab_original_captions() {
  static const std::vector<std::string> texts = {"Cat with paint", "rock statue", "frogs on leaf", "jellyfish"};
  return texts;
}

const std::vector<std::string>& lab_default_dialogue() {
  static const std::vector<std::string> texts = {"Cats don't usually", "like water", "but this one likes paint",
                                                 "quite a lot"};
  return texts;
}

namespace {

Tensor rows_of(const Tensor& t, size_t start, size_t count) {
  return t.narrow0(static_cast<int64_t>(start), static_cast<int64_t>(count)).clone();
}

Tensor lab_matrix(const Tensor& a, const Tensor& b) {  // (a @ b.T).softmax(dim=0)
  Tensor m = similarity_matrix(a, b, Score::Dot);
  softmax_(m, SoftmaxDim::Dim0);
  return m;
}

void tell(LabProgress progress, const std::string& step) {
  if (progress) progress(step);
}

}  // namespace

void check_lab_models(const LabInputs& in) {
  const struct {
    const char* option;
    const std::string& model;
    bool (*fits)(const ModelInfo&);
    const char* part;
  } parts[] = {
      {"--text-model", in.text_model, [](const ModelInfo& m) { return m.texts; }, "embeds no texts"},
      {"--image-model", in.image_model, [](const ModelInfo& m) { return m.images; }, "embeds no images"},
      {"--clip-model", in.clip_model, [](const ModelInfo& m) { return m.joint; },
       "does not embed texts and images in one space, as CLIP does"},
  };
  for (const auto& p : parts) {
    ModelInfo info;
    try {
      info = inspect_model(p.model);
    } catch (const Error& e) {
      throw Error(e.kind(), str(p.option, " ", e.what()), e.hint());
    }
    if (!p.fits(info)) usage_error(p.option, " ", p.model, ": a ", info.architecture, " model ", p.part);
  }
}

void run_lab_bert_vit(const LabInputs& in, LabResult& r, LabProgress progress) {
  if (in.images.size() < 2)
    usage_error("the lab compares images with each other: give at least two images (got ", in.images.size(), ")");
  if (in.image_labels.size() != in.images.size()) fail("lab: ", in.image_labels.size(), " labels for ", in.images.size(), " images");
  if (in.captions.empty()) usage_error("the lab needs at least one caption");
  if (in.dialogue.empty()) usage_error("the lab needs at least one dialogue text");
  std::vector<std::string> texts = in.captions;
  texts.insert(texts.end(), in.dialogue.begin(), in.dialogue.end());
  const size_t nc = in.captions.size(), nd = in.dialogue.size();
  tell(progress, "BERT × ViT: loading " + in.text_model);
  const auto text_embedder = TextEmbedder::load(in.text_model, in.placement);
  EmbedOptions options;
  options.pooling = in.text_pooling;
  tell(progress, "BERT × ViT: embedding " + std::to_string(texts.size()) + " texts in one batch (" +
                     pooling_name(in.text_pooling) + " pooling)");
  const Tensor t = text_embedder->embed(texts, options).embeddings;
  tell(progress, "BERT × ViT: loading " + in.image_model);
  const auto image_embedder = ImageEmbedder::load(in.image_model, in.placement);
  tell(progress, "BERT × ViT: embedding " + std::to_string(in.images.size()) + " images");
  EmbedOptions image_options;
  image_options.pooling = Pooling::MeanNoCls;  // the lab's image_avg_embeds: mean of the patch tokens
  const Tensor img = image_embedder->embed(in.images, image_options).embeddings;
  const Tensor cap = rows_of(t, 0, nc), dia = rows_of(t, nc, nd);
  if (cap.dim(1) != img.dim(1))
    usage_error("the text model's embeddings have ", cap.dim(1), " dimensions and the image model's ", img.dim(1),
                ": the lab's dot products need equal sizes (bert-base and vit-base both have 768)");
  r.image_image = lab_matrix(img, img);
  r.captions_image = lab_matrix(cap, img);
  r.dialogue_captions = lab_matrix(dia, cap);
  r.dialogue_image = lab_matrix(dia, img);
}

void run_lab_clip(const LabInputs& in, LabResult& r, LabProgress progress) {
  std::vector<std::string> texts = in.captions;
  texts.insert(texts.end(), in.dialogue.begin(), in.dialogue.end());
  const size_t nc = in.captions.size(), nd = in.dialogue.size();
  tell(progress, "CLIP: loading " + in.clip_model);
  const std::shared_ptr<const Model> clip = Model::load(in.clip_model, in.placement);  // read once, both towers
  const TextEmbedder clip_text(clip);
  const ImageEmbedder clip_image(clip);
  EmbedOptions projection;
  projection.pooling = Pooling::Projection;  // get_text_features / get_image_features
  tell(progress, "CLIP: embedding " + std::to_string(texts.size()) + " texts and " + std::to_string(in.images.size()) +
                     " images");
  const Tensor t = clip_text.embed(texts, projection).embeddings;
  const Tensor img = clip_image.embed(in.images, projection).embeddings;
  const Tensor cap = rows_of(t, 0, nc), dia = rows_of(t, nc, nd);
  r.clip_captions_image = lab_matrix(cap, img);
  r.clip_dialogue_image = lab_matrix(dia, img);
}

LabResult run_lab(const LabInputs& in, LabProgress progress) {
  check_lab_models(in);
  LabResult r;
  run_lab_bert_vit(in, r, progress);
  run_lab_clip(in, r, progress);
  return r;
}

DiagonalMatch diagonal_match(const Tensor& matrix) {
  DiagonalMatch m;
  const int64_t rows = matrix.dim(0), cols = matrix.dim(1);
  m.pairs = static_cast<int>(std::min(rows, cols));
  const float* s = matrix.data<float>();
  for (int64_t i = 0; i < rows; ++i) {
    const int best = static_cast<int>(std::max_element(s + i * cols, s + (i + 1) * cols) - (s + i * cols));
    m.best.push_back(best);
    if (i < m.pairs && best == i) ++m.matched;
  }
  return m;
}

plot::Heatmap similarity_heatmap(const Tensor& matrix, const std::vector<std::string>& row_labels,
                                 const std::vector<std::string>& col_labels, const std::string& rows_name,
                                 const std::string& cols_name) {
  plot::Heatmap h;
  h.rows = static_cast<int>(matrix.dim(0));
  h.cols = static_cast<int>(matrix.dim(1));
  const Tensor f = matrix.dtype() == DType::F32 ? matrix : matrix.to(DType::F32);
  h.values.assign(f.data<float>(), f.data<float>() + f.numel());
  h.row_labels = row_labels;
  h.col_labels = col_labels;
  h.title = "Similarity between " + rows_name + " and " + cols_name + " Embeddings";
  h.y_label = rows_name;
  h.x_label = cols_name;
  return h;
}

namespace {
plot::Figure grid(std::vector<plot::Heatmap> panels, int grid_rows, int grid_cols, double dpi) {
  plot::Figure f;
  f.grid_rows = grid_rows;
  f.grid_cols = grid_cols;
  double w = 0, h = 0;
  for (const auto& p : panels) {
    const auto [pw, ph] = plot::default_panel_size(p.rows, p.cols);
    w = std::max(w, pw);
    h = std::max(h, ph);
  }
  f.width_in = w * grid_cols;
  f.height_in = h * grid_rows;
  f.dpi = dpi;
  f.panels = std::move(panels);
  return f;
}
}  // namespace

plot::Figure lab_bert_vit_figure(const LabInputs& in, const LabResult& r, double dpi) {
  return grid({similarity_heatmap(r.image_image, in.image_labels, in.image_labels, "Image", "Image"),
               similarity_heatmap(r.captions_image, in.captions, in.image_labels, "Captions", "Image"),
               similarity_heatmap(r.dialogue_captions, in.dialogue, in.captions, "Dialogue", "Captions"),
               similarity_heatmap(r.dialogue_image, in.dialogue, in.image_labels, "Dialogue", "Image")},
              2, 2, dpi);
}

plot::Figure lab_clip_figure(const LabInputs& in, const LabResult& r, double dpi) {
  return grid({similarity_heatmap(r.clip_captions_image, in.captions, in.image_labels, "Captions", "Image"),
               similarity_heatmap(r.clip_dialogue_image, in.dialogue, in.image_labels, "Dialogue", "Image")},
              1, 2, dpi);
}

}  // namespace mmx
