// CLIP embeddings: texts through the tokenizer (one padded batch, at most 77 tokens) and the text
// tower, images through CLIPImageProcessor and the vision tower; `projection` gives
// get_text_features / get_image_features (unnormalised, as the lab uses them), `pooled` the pooled
// outputs before the projections.
#include <cstring>
#include <memory>

#include "mmx/files.hpp"
#include "core/log.hpp"
#include "io/checkpoint.hpp"
#include "models/clip.hpp"
#include "pipelines/pooling.hpp"

namespace mmx::detail {

namespace {

std::shared_ptr<const CLIPModel> load_clip(const ModelFolder& folder) {
  return std::make_shared<const CLIPModel>(
      load_model<CLIPModel>(CLIPConfig::from_json(folder.config), Checkpoint::open(folder.path)));
}

Pooling clip_pooling(const EmbedOptions& options) {
  const Pooling p = options.pooling.value_or(Pooling::Projection);
  if (p != Pooling::Projection && p != Pooling::Pooled)
    usage_error("--pooling ", pooling_name(p), " is not a CLIP pooling (choose projection or pooled)");
  return p;
}

std::string describe(const CLIPModel& m) {
  std::string s = "clip:";
  if (m.has_text()) {
    const auto& c = m.text_model().config();
    s += str(" text ", c.num_hidden_layers, " layers × ", c.hidden_size, " (", c.hidden_act, ")");
  }
  if (m.has_vision()) {
    const auto& c = m.vision_model().config();
    s += str(m.has_text() ? "," : "", " vision ", c.num_hidden_layers, " layers × ", c.hidden_size, ", patch ", c.patch_size);
  }
  return s;
}

class ClipTextEmbedder : public TextEmbedder {
 public:
  ClipTextEmbedder(std::shared_ptr<const CLIPModel> model, std::unique_ptr<Tokenizer> tokenizer)
      : model_(std::move(model)), tokenizer_(std::move(tokenizer)) {}
  const Tokenizer& tokenizer() const override { return *tokenizer_; }
  std::string description() const override { return describe(*model_); }
  std::optional<float> logit_scale() const override { return model_->logit_scale(); }

  EmbedResult embed(const std::vector<std::string>& texts, const EmbedOptions& options) const override {
    if (texts.empty()) usage_error("no texts to embed");
    const Pooling pooling = clip_pooling(options);
    const auto& c = model_->text_model().config();
    const int64_t limit = std::min(tokenizer_->model_max_length(), c.max_position_embeddings);
    const int64_t max_length = std::min(options.max_length.value_or(limit), limit);
    // processor(text=texts, padding=True): one batch; texts over the limit are cut, and named.
    BatchEncoding batch = tokenizer_->encode_batch(texts, Padding::None);
    std::string cut;
    for (size_t i = 0; i < texts.size(); ++i)
      if (static_cast<int64_t>(batch.rows[i].input_ids.size()) > max_length)
        cut += str(cut.empty() ? "" : ", ", "text ", i + 1, " (", batch.rows[i].input_ids.size(), " tokens)");
    if (!cut.empty()) log_warn("CLIP reads at most ", max_length, " tokens; truncated: ", cut);
    batch = tokenizer_->encode_batch(texts, Padding::Longest, max_length);
    EmbedResult result;
    result.pooling = pooling;
    result.input_ids = batch.input_ids();
    result.attention_mask = batch.attention_mask();
    const CLIPTextOutputs out = model_->text_model().forward(result.input_ids, result.attention_mask);
    result.embeddings = pooling == Pooling::Projection ? model_->project_text(out.pooler_output) : out.pooler_output;
    if (options.normalize) l2_normalize(result.embeddings);
    if (options.token_embeddings) result.last_hidden_state = out.last_hidden_state;
    return result;
  }

 private:
  std::shared_ptr<const CLIPModel> model_;
  std::unique_ptr<Tokenizer> tokenizer_;
};

class ClipImageEmbedder : public ImageEmbedder {
 public:
  ClipImageEmbedder(std::shared_ptr<const CLIPModel> model, ImageProcessorConfig processor)
      : model_(std::move(model)), processor_(std::move(processor)) {}
  const ImageProcessorConfig& processor() const override { return processor_; }
  std::string description() const override { return describe(*model_); }
  std::optional<float> logit_scale() const override { return model_->logit_scale(); }

  EmbedResult embed(const std::vector<Image>& images, const EmbedOptions& options) const override {
    if (images.empty()) usage_error("no images to embed");
    const Pooling pooling = clip_pooling(options);
    const Tensor pixel_values = preprocess_images(images, processor_);
    const auto& c = model_->vision_model().config();
    const int64_t tokens = c.num_patches() + 1, n = pixel_values.dim(0);
    const int64_t per_slice = std::max<int64_t>(1, options.max_batch_tokens / tokens);
    std::vector<Tensor> parts, hidden;
    for (int64_t row0 = 0; row0 < n; row0 += per_slice) {
      const CLIPVisionOutputs out = model_->vision_model().forward(pixel_values.narrow0(row0, std::min(per_slice, n - row0)).clone());
      parts.push_back(pooling == Pooling::Projection ? model_->project_image(out.pooler_output) : out.pooler_output);
      if (options.token_embeddings) hidden.push_back(out.last_hidden_state);
    }
    auto concat = [](const std::vector<Tensor>& ts) {
      Shape shape = ts[0].shape();
      shape[0] = 0;
      for (const auto& t : ts) shape[0] += t.dim(0);
      Tensor out = Tensor::empty(shape);
      size_t offset = 0;
      for (const auto& t : ts) {
        std::memcpy(static_cast<char*>(out.raw_mutable()) + offset, t.raw(), t.nbytes());
        offset += t.nbytes();
      }
      return out;
    };
    EmbedResult result;
    result.pooling = pooling;
    result.embeddings = concat(parts);
    if (options.normalize) l2_normalize(result.embeddings);
    if (options.token_embeddings) {
      result.last_hidden_state = concat(hidden);
      result.pixel_values = pixel_values;
    }
    return result;
  }

 private:
  std::shared_ptr<const CLIPModel> model_;
  ImageProcessorConfig processor_;
};

}  // namespace

std::unique_ptr<TextEmbedder> load_clip_text_embedder(const ModelFolder& folder) {
  if (folder.model_type == "clip_vision_model")
    usage_error(folder.path, ": a CLIP vision model embeds images, not texts (use --image)");
  auto tokenizer = Tokenizer::load(folder.path);
  return std::make_unique<ClipTextEmbedder>(load_clip(folder), std::move(tokenizer));
}

std::unique_ptr<ImageEmbedder> load_clip_image_embedder(const ModelFolder& folder) {
  if (folder.model_type == "clip_text_model")
    usage_error(folder.path, ": a CLIP text model embeds texts, not images (use --text)");
  return std::make_unique<ClipImageEmbedder>(load_clip(folder), load_processor(folder));
}

}  // namespace mmx::detail
