#include "mmx/model.hpp"

#include <cmath>
#include <filesystem>
#include <map>
#include <mutex>

#include "core/log.hpp"
#include "io/checkpoint.hpp"
#include "mmx/files.hpp"
#include "mmx/hub_cache.hpp"
#include "models/registry.hpp"
#include "text/tokenizer_json.hpp"

namespace mmx {
namespace {

// The models loaded in this process, by folder and placement, for as long as someone holds them.
struct LoadedModels {
  std::mutex mutex;
  std::map<std::string, std::weak_ptr<const Model>> by_key;
};
LoadedModels& loaded_models() {
  static LoadedModels* models = new LoadedModels();  // never destroyed: models may outlive static teardown
  return *models;
}

// tokenizer_config.json's tokenizer_class, else the architecture's tokenizer (AutoTokenizer's order).
std::optional<TokenizerKind> tokenizer_kind(const std::string& folder, const Architecture* architecture) {
  const std::string config = join_path(folder, "tokenizer_config.json");
  if (file_exists(config))
    if (const auto cls = JsonObject::load(config).get_optional_string("tokenizer_class"))
      return tokenizer_kind_for_folder(folder, *cls, config);
  return architecture ? architecture->tokenizer : std::nullopt;
}

ImageProcessorConfig processor_of(const ModelFolder& folder, int64_t image_size) {
  const Architecture& a = *folder.architecture;
  const std::string path = join_path(folder.path, "preprocessor_config.json");
  if (file_exists(path)) return ImageProcessorConfig::load(path, a.image_processor);
  ImageProcessorConfig c = ImageProcessorConfig::defaults(a.image_processor, image_size);
  log_warn(folder.path, ": no preprocessor_config.json; using ", c.kind, "'s defaults at ", image_size, "×", image_size);
  return c;
}

// What --verbose says a model resolved to: the processor's steps as preprocessor_config.json set them.
std::string describe(const ImageProcessorConfig& c) {
  static const char* const kResample[] = {"nearest", "lanczos", "bilinear", "bicubic", "box", "hamming"};
  std::string s = c.kind + ":";
  if (c.do_resize) {
    s += " resize to ";
    if (c.shortest_edge) s += "shortest edge " + std::to_string(*c.shortest_edge);
    else s += std::to_string(c.height.value_or(0)) + "×" + std::to_string(c.width.value_or(0));
    s += str(" (", kResample[static_cast<int>(c.resample)], "),");
  }
  if (c.do_center_crop) s += str(" center crop ", c.crop_height, "×", c.crop_width, ",");
  if (c.do_rescale) s += std::abs(c.rescale_factor - 1.0 / 255) < 1e-12 ? " rescale ×1/255," : str(" rescale ×", c.rescale_factor, ",");
  if (c.do_normalize)
    s += str(" normalize mean (", c.image_mean[0], ", ", c.image_mean[1], ", ", c.image_mean[2], ") std (", c.image_std[0],
             ", ", c.image_std[1], ", ", c.image_std[2], ")");
  if (s.back() == ',') s.pop_back();
  return s;
}

}  // namespace

Model::~Model() = default;

std::shared_ptr<const Model> Model::load(const std::string& model, const Placement& placement) {
  placement.check();
  const ModelFolder folder = open_model_folder(model);
  const Architecture& a = *folder.architecture;
  if (a.role != ModelRole::Encoder || !a.load)
    usage_error(folder.path, ": a ", a.display_name, " is a diffusion pipeline's component, not a model to embed with");
  std::error_code ec;
  const std::string canonical = std::filesystem::weakly_canonical(folder.path, ec).string();
  // A sentence-transformers folder's Transformer may be a folder of its own (0_Transformer/): loaded
  // directly it is a plain model, so the modules' root is part of the key.
  const std::string key = (ec ? folder.path : canonical) + "\n" +
                          (folder.sentence_transformers ? "modules of " + folder.sentence_transformers->root + "\n" : "") +
                          placement.str();
  LoadedModels& models = loaded_models();
  std::lock_guard<std::mutex> lock(models.mutex);  // one load at a time: two callers never load one folder twice
  if (auto existing = models.by_key[key].lock()) {
    log_debug("reusing ", folder.path, " (", placement.str(), "), already loaded");
    return existing;
  }
  log_info("loading ", folder.path, " (", a.display_name, ", ", placement.str(), ")");
  std::shared_ptr<Model> m(new Model());
  m->path_ = folder.path;
  m->placement_ = placement;
  m->architecture_ = &a;
  if (folder.sentence_transformers) {  // its Dense weights, read once here (opening a folder reads configs only)
    auto st = std::make_shared<SentenceTransformersFolder>(*folder.sentence_transformers);
    st->load_dense_weights();
    m->sentence_transformers_ = std::move(st);
  }
  std::optional<TokenizerKind> kind;
  if (a.tokenizer) {  // tokenizer first: a folder without tokenizer files fails before its weights are read
    kind = tokenizer_kind(folder.path, &a);
    m->tokenizer_ = Tokenizer::load(folder.path, *kind);
  }
  m->parts_ = a.load(folder.config, Checkpoint::open(folder.path), placement, HalfWeights::Widen);
  if (!m->parts_->text()) m->tokenizer_.reset();
  if (const VisionEncoder* vision = m->parts_->vision()) m->image_processor_ = processor_of(folder, vision->image_size());
  log_info(folder.path, ": ", m->description());
  if (m->tokenizer_) {
    const auto* fast = dynamic_cast<const text::JsonTokenizer*>(m->tokenizer_.get());
    log_info("tokenizer: ",
             fast ? fast->describe()
             : *kind == TokenizerKind::WordPiece ? "BertTokenizer (WordPiece, vocab.txt)"
                                                 : "CLIPTokenizer (byte-level BPE)",
             ", at most ", m->tokenizer_->model_max_length(), " tokens");
  }
  if (m->image_processor_) log_info("image processor: ", describe(*m->image_processor_));
  if (const auto* st = m->sentence_transformers_.get()) {
    if (!m->tokenizer_) fail(st->root, ": a sentence-transformers folder whose Transformer has no tokenizer");
    std::string modules;
    for (Pooling p : st->poolings) modules += str(modules.empty() ? "" : "+", pooling_name(p));
    for (const auto& step : st->steps)
      modules += step.kind == SentenceTransformersFolder::Step::Dense ? str(", Dense ", step.in_features, "→", step.out_features)
                                                                       : std::string(", Normalize");
    log_info("sentence-transformers modules: pooling ", modules, st->max_seq_length ? str(", max_seq_length ", *st->max_seq_length) : "",
             st->do_lower_case ? ", lowercased" : "", ", similarity ", st->similarity_fn_name);
  }
  models.by_key[key] = m;
  return m;
}

std::string Model::architecture() const { return architecture_->display_name; }
std::string Model::description() const { return parts_->description(); }
bool Model::has_text() const { return parts_->text() != nullptr && tokenizer_ != nullptr; }
bool Model::has_vision() const { return parts_->vision() != nullptr; }
bool Model::has_classifier() const { return parts_->classifier() != nullptr; }
std::optional<float> Model::logit_scale() const { return parts_->logit_scale(); }
Score Model::default_score() const {
  if (!sentence_transformers_) return architecture_->score;
  const std::string& name = sentence_transformers_->similarity_fn_name;
  if (name == "cosine") return Score::Cosine;
  if (name == "dot") return Score::Dot;
  usage_error(sentence_transformers_->root, ": similarity_fn_name '", name,
              "' (config_sentence_transformers.json) is not implemented; give --score cosine or dot");
}

Pooling Model::default_text_pooling() const {
  if (!has_text() || architecture_->text_poolings.empty()) usage_error(path_, ": a ", architecture(), " model embeds no texts");
  return sentence_transformers_ ? Pooling::Modules : architecture_->text_poolings.front();
}

Pooling Model::default_image_pooling() const {
  if (!has_vision() || architecture_->image_poolings.empty())
    usage_error(path_, ": a ", architecture(), " model embeds no images");
  return architecture_->image_poolings.front();
}

const Tokenizer& Model::tokenizer() const {
  if (!tokenizer_) usage_error(path_, ": a ", architecture(), " model has no tokenizer: it embeds images, not texts (use --image)");
  return *tokenizer_;
}

const ImageProcessorConfig& Model::image_processor() const {
  if (!image_processor_) usage_error(path_, ": a ", architecture(), " model embeds texts, not images (use --text)");
  return *image_processor_;
}

ModelInfo inspect_model(const std::string& model) {
  const ModelFolder folder = open_model_folder(model);
  const Architecture& a = *folder.architecture;
  ModelInfo info;
  info.path = folder.path;
  info.architecture = a.display_name;
  info.texts = a.tokenizer.has_value();
  info.images = !a.image_processor.empty();
  info.joint = info.texts && info.images && a.score == Score::ClipLogits;
  if (folder.sentence_transformers) info.sentence_transformers_similarity = folder.sentence_transformers->similarity_fn_name;
  if (folder.config.has("architectures") && folder.config.json().at("architectures").is_array())
    for (const auto& name : folder.config.json().at("architectures"))
      info.classifier |= name.is_string() && name.get<std::string>().find("ForImageClassification") != std::string::npos;
  return info;
}

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& model) {
  std::string folder = resolve_model_path(model);
  if (SentenceTransformersFolder::present(folder)) folder = SentenceTransformersFolder::read(folder)->transformer_folder;
  const Architecture* architecture = nullptr;
  if (file_exists(join_path(folder, "config.json"))) architecture = open_model_folder(folder).architecture;
  const auto kind = tokenizer_kind(folder, architecture);
  if (!kind)
    fail(folder, ": no tokenizer: neither tokenizer_config.json's tokenizer_class nor config.json's architecture names one");
  return Tokenizer::load(folder, *kind);
}

ImageProcessorConfig load_image_processor(const std::string& model) {
  const std::string folder = resolve_model_path(model);
  const std::string path = join_path(folder, "preprocessor_config.json");
  const bool has_config = file_exists(join_path(folder, "config.json"));
  if (file_exists(path)) {
    // A folder holding only preprocessor_config.json, or a model mmx cannot run yet, still preprocesses.
    std::string kind;
    if (has_config) {
      try {
        kind = open_model_folder(folder).architecture->image_processor;
      } catch (const Error&) {
      }
    }
    return ImageProcessorConfig::load(path, kind);
  }
  const ModelFolder f = open_model_folder(folder);
  if (f.architecture->image_processor.empty() || !f.architecture->image_size)
    usage_error(folder, ": a ", f.architecture->display_name, " model has no image processor (it takes no images)");
  return processor_of(f, f.architecture->image_size(f.config));
}

}  // namespace mmx
