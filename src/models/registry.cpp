#include "models/registry.hpp"

#include "core/log.hpp"
#include "mmx/files.hpp"
#include "mmx/hub_cache.hpp"
#include "models/bert.hpp"
#include "models/clip.hpp"
#include "models/distilbert.hpp"
#include "models/mpnet.hpp"
#include "models/roberta.hpp"
#include "models/vit.hpp"

namespace mmx {
namespace {

// Every architecture this mmx implements. A new model family is its file under models/ and a line here.
const std::vector<Architecture>& architectures() {
  using enum Pooling;
  static const std::vector<Architecture> table = {
      {.model_type = "bert", .display_name = "BERT",
       .classes = {"BertModel", "BertForMaskedLM", "BertForPreTraining", "BertForSequenceClassification"},
       .load = load_bert, .tokenizer = TokenizerKind::WordPiece,
       .text_poolings = {MeanNoCls, Cls, Pooler, Mean, Lab, Max, MeanSqrtLen, WeightedMean, LastToken}, .score = Score::Dot},
      {.model_type = "roberta", .display_name = "RoBERTa",
       .classes = {"RobertaModel", "RobertaForMaskedLM", "RobertaForSequenceClassification"},
       .load = load_roberta, .tokenizer = TokenizerKind::TokenizerJson,
       .text_poolings = {Mean, Cls, Pooler, MeanNoCls, Lab, Max, MeanSqrtLen, WeightedMean, LastToken}, .score = Score::Dot},
      {.model_type = "xlm-roberta", .display_name = "XLM-RoBERTa",
       .classes = {"XLMRobertaModel", "XLMRobertaForMaskedLM", "XLMRobertaForSequenceClassification"},
       .load = load_roberta, .tokenizer = TokenizerKind::TokenizerJson,
       .text_poolings = {Mean, Cls, Pooler, MeanNoCls, Lab, Max, MeanSqrtLen, WeightedMean, LastToken}, .score = Score::Dot},
      {.model_type = "camembert", .display_name = "CamemBERT", .classes = {"CamembertModel", "CamembertForMaskedLM"},
       .load = load_roberta, .tokenizer = TokenizerKind::TokenizerJson,
       .text_poolings = {Mean, Cls, Pooler, MeanNoCls, Lab, Max, MeanSqrtLen, WeightedMean, LastToken}, .score = Score::Dot},
      {.model_type = "mpnet", .display_name = "MPNet", .classes = {"MPNetModel", "MPNetForMaskedLM"},
       .load = load_mpnet, .tokenizer = TokenizerKind::TokenizerJson,
       .text_poolings = {Mean, Cls, Pooler, MeanNoCls, Lab, Max, MeanSqrtLen, WeightedMean, LastToken}, .score = Score::Dot},
      {.model_type = "distilbert", .display_name = "DistilBERT",
       .classes = {"DistilBertModel", "DistilBertForMaskedLM", "DistilBertForSequenceClassification"},
       .load = load_distilbert, .tokenizer = TokenizerKind::WordPiece,
       .text_poolings = {Mean, Cls, MeanNoCls, Lab, Max, MeanSqrtLen, WeightedMean, LastToken}, .score = Score::Dot},
      {.model_type = "vit", .display_name = "ViT", .classes = {"ViTModel", "ViTForImageClassification"},
       .load = load_vit, .image_processor = "ViTImageProcessor", .image_size = vit_image_size,
       .image_poolings = {MeanNoCls, Cls, Pooler, Mean, Lab}, .score = Score::Dot},
      {.model_type = "clip", .display_name = "CLIP", .classes = {"CLIPModel"},
       .load = load_clip, .tokenizer = TokenizerKind::ClipBpe, .image_processor = "CLIPImageProcessor",
       .image_size = clip_image_size, .text_poolings = {Projection, Pooled}, .image_poolings = {Projection, Pooled},
       .score = Score::ClipLogits},
      {.model_type = "clip_text_model", .display_name = "CLIP", .classes = {"CLIPTextModel", "CLIPTextModelWithProjection"},
       .load = load_clip, .tokenizer = TokenizerKind::ClipBpe, .text_poolings = {Projection, Pooled},
       .score = Score::ClipLogits},
      {.model_type = "clip_vision_model", .display_name = "CLIP",
       .classes = {"CLIPVisionModel", "CLIPVisionModelWithProjection"},
       .load = load_clip, .image_processor = "CLIPImageProcessor", .image_size = clip_image_size,
       .image_poolings = {Projection, Pooled}, .score = Score::ClipLogits},
      // diffusers components (unet2d_condition.cpp, autoencoder_kl.cpp), built by the diffusion pipelines
      {.display_name = "UNet", .classes = {"UNet2DConditionModel"}, .role = ModelRole::Denoiser},
      {.display_name = "VAE", .classes = {"AutoencoderKL"}, .role = ModelRole::Autoencoder},
  };
  return table;
}

std::string known_model_types() {
  std::string known;
  for (const auto& a : architectures())
    if (!a.model_type.empty()) known += (known.empty() ? "" : ", ") + a.model_type;
  return known;
}

}  // namespace

const Architecture* architecture_by_class(const std::string& class_name) {
  for (const auto& a : architectures())
    for (const auto& c : a.classes)
      if (c == class_name) return &a;
  return nullptr;
}

std::vector<std::string> classes_for(ModelRole role) {
  std::vector<std::string> out;
  for (const auto& a : architectures())
    if (a.role == role) out.insert(out.end(), a.classes.begin(), a.classes.end());
  return out;
}

const Architecture& architecture_of(const JsonObject& config) {
  if (const auto type = config.get_optional_string("model_type")) {
    for (const auto& a : architectures())
      if (!a.model_type.empty() && a.model_type == *type) return a;
    fail(config.source(), ": model_type '", *type, "' is not supported by this mmx (supported: ", known_model_types(), ")");
  }
  // Configs from before model_type named only the class they were saved from.
  if (config.has("architectures") && config.json().at("architectures").is_array())
    for (const auto& name : config.json().at("architectures"))
      if (name.is_string())
        if (const Architecture* a = architecture_by_class(name.get<std::string>()); a && a->role == ModelRole::Encoder)
          return *a;
  fail(config.source(), ": no model_type (and no \"architectures\" entry this mmx implements; supported model types: ",
       known_model_types(), ")");
}

ModelFolder open_model_folder(const std::string& model) {
  std::string path = resolve_model_path(model);  // a folder, or a Hub id found in the cache
  std::shared_ptr<const SentenceTransformersFolder> st;
  if (SentenceTransformersFolder::present(path)) {
    st = SentenceTransformersFolder::read(path);
    path = st->transformer_folder;
  }
  const std::string config_path = join_path(path, "config.json");
  if (!file_exists(config_path))
    throw Error(ErrorKind::Runtime, path + ": no config.json (not a Hugging Face model folder)",
                "a model folder holds config.json and model.safetensors, as written by save_pretrained");
  JsonObject config = JsonObject::load(config_path);
  const Architecture& architecture = architecture_of(config);
  return ModelFolder{path, std::move(config), &architecture, std::move(st)};
}

}  // namespace mmx
