// The embed pipeline: tokenise every text into one padded batch (as the lab does), run the encoder
// in slices of at most max_batch_tokens, pool.
#include "mmx/embed.hpp"

#include <cmath>
#include <cstring>

#include "core/file_util.hpp"
#include "core/log.hpp"
#include "io/checkpoint.hpp"
#include "models/bert.hpp"
#include "models/vit.hpp"
#include "models/model_folder.hpp"

namespace mmx {

Pooling pooling_from_name(const std::string& name) {
  if (name == "cls") return Pooling::Cls;
  if (name == "pooler") return Pooling::Pooler;
  if (name == "mean") return Pooling::Mean;
  if (name == "mean-no-cls") return Pooling::MeanNoCls;
  if (name == "lab") return Pooling::Lab;
  usage_error("unknown pooling '", name, "' (choose cls, pooler, mean, mean-no-cls or lab)");
}

const char* pooling_name(Pooling p) {
  switch (p) {
    case Pooling::Cls: return "cls";
    case Pooling::Pooler: return "pooler";
    case Pooling::Mean: return "mean";
    case Pooling::MeanNoCls: return "mean-no-cls";
    case Pooling::Lab: return "lab";
  }
  return "?";
}

namespace {

// Pools rows of last_hidden_state [B, L, D] into out rows (row offset `row0`).
void pool(Pooling pooling, const Tensor& hidden, const Tensor& mask, const Tensor& pooler_output, Tensor& out,
          int64_t row0) {
  const int64_t batch = hidden.dim(0), seq = hidden.dim(1), d = hidden.dim(2);
  const float* h = hidden.data<float>();
  const int64_t* m = mask.data<int64_t>();
  float* o = out.data<float>() + row0 * d;
  std::vector<double> sum(static_cast<size_t>(d));
  for (int64_t b = 0; b < batch; ++b) {
    const float* hb = h + b * seq * d;
    const int64_t* mb = m + b * seq;
    float* ob = o + b * d;
    if (pooling == Pooling::Cls) {
      std::memcpy(ob, hb, sizeof(float) * d);
      continue;
    }
    if (pooling == Pooling::Pooler) {
      std::memcpy(ob, pooler_output.data<float>() + b * d, sizeof(float) * d);
      continue;
    }
    std::fill(sum.begin(), sum.end(), 0.0);
    int64_t count = 0;
    for (int64_t t = 0; t < seq; ++t) count += mb[t];
    const int64_t first = pooling == Pooling::Mean ? 0 : 1;
    for (int64_t t = first; t < seq; ++t) {
      // The lab's formula sums every position after [CLS], padding included; the masked means do not.
      if (pooling != Pooling::Lab && mb[t] == 0) continue;
      for (int64_t i = 0; i < d; ++i) sum[i] += hb[t * d + i];
    }
    const double divisor = static_cast<double>(pooling == Pooling::Mean ? count : count - 1);
    for (int64_t i = 0; i < d; ++i) ob[i] = static_cast<float>(sum[i] / divisor);
  }
}

void l2_normalize(Tensor& x) {
  const int64_t n = x.dim(0), d = x.dim(1);
  float* p = x.data<float>();
  for (int64_t r = 0; r < n; ++r) {
    double sq = 0;
    for (int64_t i = 0; i < d; ++i) sq += double(p[r * d + i]) * p[r * d + i];
    const double norm = std::max(std::sqrt(sq), 1e-12);  // torch.nn.functional.normalize's eps
    for (int64_t i = 0; i < d; ++i) p[r * d + i] = static_cast<float>(p[r * d + i] / norm);
  }
}

class BertEmbedder : public TextEmbedder {
 public:
  BertEmbedder(const ModelFolder& folder, std::unique_ptr<Tokenizer> tokenizer, const Checkpoint& checkpoint)
      : tokenizer_(std::move(tokenizer)), model_(load_model(BertConfig::from_json(folder.config), checkpoint)) {}

  const Tokenizer& tokenizer() const override { return *tokenizer_; }

  std::string description() const override {
    const auto& c = model_.config();
    return str("bert: ", c.num_hidden_layers, " layers, hidden ", c.hidden_size, ", ", c.num_attention_heads,
               " heads, intermediate ", c.intermediate_size, ", ", c.hidden_act);
  }

  EmbedResult embed(const std::vector<std::string>& texts, const EmbedOptions& options) const override {
    if (texts.empty()) usage_error("no texts to embed");
    if (options.pooling == Pooling::Pooler && !model_.has_pooler())
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
    result.embeddings = Tensor::empty({n, d});
    if (options.token_embeddings) result.last_hidden_state = Tensor::empty({n, seq, d});
    // Every slice keeps the full batch's padded length, so each row's numbers are those of one batch.
    const int64_t rows_per_slice = std::max<int64_t>(1, options.max_batch_tokens / std::max<int64_t>(seq, 1));
    for (int64_t row0 = 0; row0 < n; row0 += rows_per_slice) {
      const int64_t rows = std::min(rows_per_slice, n - row0);
      const Tensor mask = attention_mask.narrow0(row0, rows).clone();
      const BertOutputs out = model_.forward(input_ids.narrow0(row0, rows).clone(),
                                             token_type_ids.narrow0(row0, rows).clone(), mask);
      pool(options.pooling, out.last_hidden_state, mask, out.pooler_output, result.embeddings, row0);
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
  static BertModel load_model(const BertConfig& config, const Checkpoint& checkpoint) {
    WeightLoader loader(checkpoint);
    return BertModel(config, loader);
  }
  std::unique_ptr<Tokenizer> tokenizer_;
  BertModel model_;
};

class VitEmbedder : public ImageEmbedder {
 public:
  VitEmbedder(const ModelFolder& folder, const Checkpoint& checkpoint)
      : model_(load_model(ViTConfig::from_json(folder.config), checkpoint)), processor_(load_processor(folder)) {}

  const ImageProcessorConfig& processor() const override { return processor_; }
  std::string description() const override {
    const auto& c = model_.config();
    return str("vit: ", c.num_hidden_layers, " layers, hidden ", c.hidden_size, ", ", c.num_attention_heads,
               " heads, image ", c.image_height, "×", c.image_width, ", patch ", c.patch_height, "×", c.patch_width);
  }

  EmbedResult embed(const std::vector<Image>& images, const EmbedOptions& options) const override {
    if (images.empty()) usage_error("no images to embed");
    if (options.pooling == Pooling::Pooler && !model_.has_pooler())
      throw Error(ErrorKind::Runtime,
                  "this checkpoint has no pooler weights (pooler.dense.*), so --pooling pooler is unavailable "
                  "(transformers would use a randomly initialised pooler)",
                  "use --pooling cls, mean or mean-no-cls");
    const Tensor pixel_values = preprocess_images(images, processor_);  // [N, 3, H, W]
    const auto& c = model_.config();
    const int64_t n = pixel_values.dim(0), tokens = c.num_patches() + 1, d = c.hidden_size;
    const int64_t d_out = options.pooling == Pooling::Pooler ? c.pooler_output_size : d;
    EmbedResult result;
    result.embeddings = Tensor::empty({n, d_out});
    if (options.token_embeddings) result.last_hidden_state = Tensor::empty({n, tokens, d});
    const int64_t per_slice = std::max<int64_t>(1, options.max_batch_tokens / tokens);
    for (int64_t row0 = 0; row0 < n; row0 += per_slice) {
      const int64_t rows = std::min(per_slice, n - row0);
      const ViTOutputs out = model_.forward(pixel_values.narrow0(row0, rows).clone());
      const Tensor mask = Tensor::from_vector(std::vector<int64_t>(size_t(rows * tokens), 1), {rows, tokens});
      if (options.pooling == Pooling::Pooler) {
        std::memcpy(result.embeddings.data<float>() + row0 * d_out, out.pooler_output.raw(), out.pooler_output.nbytes());
      } else {  // with no padding, the lab's formula is the mean over the patches
        pool(options.pooling == Pooling::Lab ? Pooling::MeanNoCls : options.pooling, out.last_hidden_state, mask,
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
  static ViTModel load_model(const ViTConfig& config, const Checkpoint& checkpoint) {
    WeightLoader loader(checkpoint);
    return ViTModel(config, loader);
  }
  ViTModel model_;
  ImageProcessorConfig processor_;
};

}  // namespace

ModelProcessor load_model_processor(const std::string& model_dir) {
  // A folder holding only preprocessor_config.json (or a model mmx cannot run yet) still preprocesses.
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
  if (folder.model_type != "vit")
    usage_error(model_dir, ": a '", folder.model_type, "' model embeds texts, not images (use --text)");
  const Checkpoint checkpoint = Checkpoint::open(model_dir);
  return std::make_unique<VitEmbedder>(folder, checkpoint);
}

std::unique_ptr<TextEmbedder> TextEmbedder::load(const std::string& model_dir) {
  const ModelFolder folder = open_model_folder(model_dir);
  if (folder.model_type != "bert")
    usage_error(model_dir, ": a '", folder.model_type, "' model embeds images, not texts (use --image)");
  std::unique_ptr<Tokenizer> tokenizer = Tokenizer::load(model_dir);
  const Checkpoint checkpoint = Checkpoint::open(model_dir);
  return std::make_unique<BertEmbedder>(folder, std::move(tokenizer), checkpoint);
}

}  // namespace mmx
