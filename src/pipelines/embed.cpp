// The embed pipeline: tokenise every text into one padded batch (as the lab does), run the encoder
// in slices of at most max_batch_tokens, pool.
#include "mmx/embed.hpp"

#include <cmath>
#include <cstring>

#include "mmx/files.hpp"
#include "core/log.hpp"
#include "io/checkpoint.hpp"
#include "mmx/hub_cache.hpp"
#include "models/bert.hpp"
#include "models/vit.hpp"
#include "pipelines/pooling.hpp"
#include "models/model_folder.hpp"

namespace mmx {

Pooling pooling_from_name(const std::string& name) {
  if (name == "cls") return Pooling::Cls;
  if (name == "pooler") return Pooling::Pooler;
  if (name == "mean") return Pooling::Mean;
  if (name == "mean-no-cls") return Pooling::MeanNoCls;
  if (name == "lab") return Pooling::Lab;
  if (name == "projection") return Pooling::Projection;
  if (name == "pooled") return Pooling::Pooled;
  usage_error("unknown pooling '", name, "' (choose cls, pooler, mean, mean-no-cls or lab; projection or pooled for CLIP)");
}

const char* pooling_name(Pooling p) {
  switch (p) {
    case Pooling::Projection: return "projection";
    case Pooling::Pooled: return "pooled";
    case Pooling::Cls: return "cls";
    case Pooling::Pooler: return "pooler";
    case Pooling::Mean: return "mean";
    case Pooling::MeanNoCls: return "mean-no-cls";
    case Pooling::Lab: return "lab";
  }
  return "?";
}

namespace {

using detail::l2_normalize;
using detail::load_clip_image_embedder;
using detail::load_clip_text_embedder;
using detail::pool;

class BertEmbedder : public TextEmbedder {
 public:
  BertEmbedder(const ModelFolder& folder, std::unique_ptr<Tokenizer> tokenizer, const Checkpoint& checkpoint)
      : tokenizer_(std::move(tokenizer)),
        model_(load_model<BertModel>(BertConfig::from_json(folder.config), checkpoint)) {}

  const Tokenizer& tokenizer() const override { return *tokenizer_; }

  std::string description() const override {
    const auto& c = model_.config();
    return str("bert: ", c.num_hidden_layers, " layers, hidden ", c.hidden_size, ", ", c.num_attention_heads,
               " heads, intermediate ", c.intermediate_size, ", ", c.hidden_act);
  }

  EmbedResult embed(const std::vector<std::string>& texts, const EmbedOptions& options) const override {
    if (texts.empty()) usage_error("no texts to embed");
    const Pooling pooling = options.pooling.value_or(Pooling::MeanNoCls);
    if (pooling == Pooling::Projection || pooling == Pooling::Pooled)
      usage_error("--pooling ", pooling_name(pooling), " is for CLIP models; BERT takes cls, pooler, mean, mean-no-cls or lab");
    if (pooling == Pooling::Pooler && !model_.has_pooler())
      throw Error(ErrorKind::Runtime, "this checkpoint has no pooler weights (pooler.dense.*), so --pooling pooler is unavailable",
                  "use --pooling cls, mean or mean-no-cls");
    const int64_t limit = std::min(tokenizer_->model_max_length(), model_.config().max_position_embeddings);
    const int64_t max_length = options.max_length.value_or(limit);
    if (max_length > model_.config().max_position_embeddings)
      usage_error("--max-length ", max_length, " exceeds the model's max_position_embeddings ",
                  model_.config().max_position_embeddings);
    // Truncation at the model's limit: transformers would fail on longer inputs; mmx warns instead.
    BatchEncoding batch = tokenizer_->encode_batch(texts, Padding::None);
    bool truncated = false;
    for (const auto& r : batch.rows) truncated |= static_cast<int64_t>(r.input_ids.size()) > max_length;
    if (truncated) {
      log_warn("some texts are longer than ", max_length, " tokens and were truncated");
      batch = tokenizer_->encode_batch(texts, Padding::Longest, max_length);
    } else {
      batch = tokenizer_->encode_batch(texts, Padding::Longest);
    }
    const Tensor input_ids = batch.input_ids(), token_type_ids = batch.token_type_ids(),
                 attention_mask = batch.attention_mask();
    const int64_t n = input_ids.dim(0), seq = input_ids.dim(1), d = model_.config().hidden_size;

    EmbedResult result;
    result.pooling = pooling;
    result.embeddings = Tensor::empty({n, d});
    if (options.token_embeddings) result.last_hidden_state = Tensor::empty({n, seq, d});
    // Every slice keeps the full batch's padded length, so each row's numbers are those of one batch.
    const int64_t rows_per_slice = std::max<int64_t>(1, options.max_batch_tokens / std::max<int64_t>(seq, 1));
    for (int64_t row0 = 0; row0 < n; row0 += rows_per_slice) {
      const int64_t rows = std::min(rows_per_slice, n - row0);
      const Tensor mask = attention_mask.narrow0(row0, rows).clone();
      const BertOutputs out = model_.forward(input_ids.narrow0(row0, rows).clone(),
                                             token_type_ids.narrow0(row0, rows).clone(), mask);
      pool(pooling, out.last_hidden_state, mask, out.pooler_output, result.embeddings, row0);
      if (options.token_embeddings)
        std::memcpy(result.last_hidden_state.data<float>() + row0 * seq * d, out.last_hidden_state.data<float>(),
                    out.last_hidden_state.nbytes());
    }
    if (options.normalize) l2_normalize(result.embeddings);
    result.input_ids = input_ids;
    result.attention_mask = attention_mask;
    return result;
  }

 private:
  std::unique_ptr<Tokenizer> tokenizer_;
  BertModel model_;
};

class VitEmbedder : public ImageEmbedder {
 public:
  VitEmbedder(const ModelFolder& folder, const Checkpoint& checkpoint)
      : model_(load_model<ViTModel>(ViTConfig::from_json(folder.config), checkpoint)),
        processor_(load_processor(folder)) {}

  const ImageProcessorConfig& processor() const override { return processor_; }
  std::string description() const override {
    const auto& c = model_.config();
    return str("vit: ", c.num_hidden_layers, " layers, hidden ", c.hidden_size, ", ", c.num_attention_heads,
               " heads, image ", c.image_height, "×", c.image_width, ", patch ", c.patch_height, "×", c.patch_width);
  }

  EmbedResult embed(const std::vector<Image>& images, const EmbedOptions& options) const override {
    if (images.empty()) usage_error("no images to embed");
    const Pooling pooling = options.pooling.value_or(Pooling::MeanNoCls);
    if (pooling == Pooling::Projection || pooling == Pooling::Pooled)
      usage_error("--pooling ", pooling_name(pooling), " is for CLIP models; ViT takes cls, pooler, mean or mean-no-cls");
    if (pooling == Pooling::Pooler && !model_.has_pooler())
      throw Error(ErrorKind::Runtime,
                  "this checkpoint has no pooler weights (pooler.dense.*), so --pooling pooler is unavailable "
                  "(transformers would use a randomly initialised pooler)",
                  "use --pooling cls, mean or mean-no-cls");
    const Tensor pixel_values = preprocess_images(images, processor_);  // [N, 3, H, W]
    const auto& c = model_.config();
    const int64_t n = pixel_values.dim(0), tokens = c.num_patches() + 1, d = c.hidden_size;
    const int64_t d_out = pooling == Pooling::Pooler ? c.pooler_output_size : d;
    EmbedResult result;
    result.pooling = pooling;
    result.embeddings = Tensor::empty({n, d_out});
    if (options.token_embeddings) result.last_hidden_state = Tensor::empty({n, tokens, d});
    const int64_t per_slice = std::max<int64_t>(1, options.max_batch_tokens / tokens);
    for (int64_t row0 = 0; row0 < n; row0 += per_slice) {
      const int64_t rows = std::min(per_slice, n - row0);
      const ViTOutputs out = model_.forward(pixel_values.narrow0(row0, rows).clone());
      const Tensor mask = Tensor::from_vector(std::vector<int64_t>(size_t(rows * tokens), 1), {rows, tokens});
      if (pooling == Pooling::Pooler) {
        std::memcpy(result.embeddings.data<float>() + row0 * d_out, out.pooler_output.raw(), out.pooler_output.nbytes());
      } else {  // with no padding, the lab's formula is the mean over the patches
        pool(pooling == Pooling::Lab ? Pooling::MeanNoCls : pooling, out.last_hidden_state, mask,
             out.pooler_output, result.embeddings, row0);
      }
      if (options.token_embeddings)
        std::memcpy(result.last_hidden_state.data<float>() + row0 * tokens * d, out.last_hidden_state.raw(),
                    out.last_hidden_state.nbytes());
    }
    if (options.normalize) l2_normalize(result.embeddings);
    if (options.token_embeddings) result.pixel_values = pixel_values;
    return result;
  }

 private:
  ViTModel model_;
  ImageProcessorConfig processor_;
};

}  // namespace

ModelProcessor load_model_processor(const std::string& model) {
  // A folder holding only preprocessor_config.json (or a model mmx cannot run yet) still preprocesses.
  const std::string model_dir = resolve_model_path(model);
  const std::string path = join_path(model_dir, "preprocessor_config.json");
  if (file_exists(path)) {
    std::string model_type;
    const std::string config = join_path(model_dir, "config.json");
    if (file_exists(config)) model_type = JsonObject::load(config).get_string("model_type", "");
    return {model_type, ImageProcessorConfig::load(path, model_type)};
  }
  const ModelFolder folder = open_model_folder(model_dir);
  return {folder.model_type, load_processor(folder)};
}

std::string model_type_of(const std::string& model_dir) { return open_model_folder(model_dir).model_type; }

std::unique_ptr<ImageEmbedder> ImageEmbedder::load(const std::string& model_dir) {
  const ModelFolder folder = open_model_folder(model_dir);
  if (folder.model_type == "clip" || folder.model_type == "clip_vision_model") return load_clip_image_embedder(folder);
  if (folder.model_type != "vit")
    usage_error(model_dir, ": a '", folder.model_type, "' model embeds texts, not images (use --text)");
  const Checkpoint checkpoint = Checkpoint::open(folder.path);
  return std::make_unique<VitEmbedder>(folder, checkpoint);
}

std::unique_ptr<TextEmbedder> TextEmbedder::load(const std::string& model_dir) {
  const ModelFolder folder = open_model_folder(model_dir);
  if (folder.model_type == "clip" || folder.model_type == "clip_text_model") return load_clip_text_embedder(folder);
  if (folder.model_type != "bert")
    usage_error(model_dir, ": a '", folder.model_type, "' model embeds images, not texts (use --image)");
  std::unique_ptr<Tokenizer> tokenizer = Tokenizer::load(folder.path);
  const Checkpoint checkpoint = Checkpoint::open(folder.path);
  return std::make_unique<BertEmbedder>(folder, std::move(tokenizer), checkpoint);
}

}  // namespace mmx
