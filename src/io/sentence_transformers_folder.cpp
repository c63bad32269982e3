#include "io/sentence_transformers_folder.hpp"

#include "io/checkpoint.hpp"
#include "io/json_config.hpp"
#include "mmx/error.hpp"
#include "mmx/files.hpp"

namespace mmx {
namespace {

using ops::Activation;

constexpr const char* kPrefix = "sentence_transformers.models.";

// A module's folder from modules.json's "path": relative, inside the root ("" is the root itself).
std::string module_folder(const std::string& root, const std::string& source, const std::string& path) {
  if (path.empty()) return root;
  if (path.front() == '/' || path.find("..") != std::string::npos || path.find('\\') != std::string::npos)
    fail(source, ": module path '", path, "' is not a folder inside ", root);
  return join_path(root, path);
}

// sentence-transformers saves the activation as its class's full name (Dense.get_config_dict).
Activation dense_activation(const JsonObject& config) {
  const std::string name = config.get_string("activation_function", "torch.nn.modules.activation.Tanh");
  static const std::map<std::string, Activation> known = {
      {"torch.nn.modules.activation.Tanh", Activation::Tanh},   {"torch.nn.modules.linear.Identity", Activation::Identity},
      {"torch.nn.modules.activation.ReLU", Activation::Relu},   {"torch.nn.modules.activation.GELU", Activation::GeluErf},
      {"torch.nn.modules.activation.Sigmoid", Activation::Sigmoid}, {"torch.nn.modules.activation.SiLU", Activation::Silu}};
  const auto it = known.find(name);
  if (it == known.end())
    fail(config.source(), ": key 'activation_function' is '", name,
         "', which mmx does not implement (Tanh, Identity, ReLU, GELU, Sigmoid, SiLU)");
  return it->second;
}

// The Pooling module's modes in the order its forward concatenates them: a "pooling_mode" string
// (newer saves) overrides the pooling_mode_* flags, as Pooling.__init__ does.
std::vector<Pooling> pooling_modes(const JsonObject& config) {
  struct Mode {
    const char* flag;
    const char* name;
    Pooling pooling;
    bool fallback;
  };
  static const Mode modes[] = {{"pooling_mode_cls_token", "cls", Pooling::Cls, false},
                               {"pooling_mode_max_tokens", "max", Pooling::Max, false},
                               {"pooling_mode_mean_tokens", "mean", Pooling::Mean, true},
                               {"pooling_mode_mean_sqrt_len_tokens", "mean_sqrt_len_tokens", Pooling::MeanSqrtLen, false},
                               {"pooling_mode_weightedmean_tokens", "weightedmean", Pooling::WeightedMean, false},
                               {"pooling_mode_lasttoken", "lasttoken", Pooling::LastToken, false}};
  std::vector<Pooling> out;
  if (auto mode = config.get_optional_string("pooling_mode")) {
    for (const Mode& m : modes)
      if (*mode == m.name) return {m.pooling};
    fail(config.source(), ": key 'pooling_mode' is '", *mode,
         "'; sentence-transformers knows cls, lasttoken, max, mean, mean_sqrt_len_tokens, weightedmean");
  }
  for (const Mode& m : modes)
    if (config.get_bool(m.flag, m.fallback)) out.push_back(m.pooling);
  if (out.empty()) fail(config.source(), ": no pooling mode is set (every pooling_mode_* is false)");
  return out;
}

SentenceTransformersFolder::Step read_dense(const std::string& folder, int64_t in_width) {
  const JsonObject config = JsonObject::load(join_path(folder, "config.json"));
  SentenceTransformersFolder::Step step;
  step.kind = SentenceTransformersFolder::Step::Dense;
  step.folder = folder;
  step.in_features = config.require_int("in_features", limits::kWidth);
  step.out_features = config.require_int("out_features", limits::kWidth);
  if (step.in_features != in_width)
    fail(config.source(), ": key 'in_features' is ", step.in_features, ", but the module before it gives ", in_width, " values");
  step.activation = dense_activation(config);
  step.bias_term = config.get_bool("bias", true);
  return step;
}

}  // namespace

bool SentenceTransformersFolder::present(const std::string& folder) { return file_exists(join_path(folder, "modules.json")); }

std::shared_ptr<const SentenceTransformersFolder> SentenceTransformersFolder::read(const std::string& root) {
  auto st = std::make_shared<SentenceTransformersFolder>();
  st->root = root;
  const std::string modules_path = join_path(root, "modules.json");
  nlohmann::json modules;
  try {
    modules = nlohmann::json::parse(read_file(modules_path));
  } catch (const nlohmann::json::exception& e) {
    fail(modules_path, ": not valid JSON: ", e.what());
  }
  if (!modules.is_array() || modules.empty()) fail(modules_path, ": expected a list of modules");
  int64_t width = 0;  // what the last module gives
  for (size_t i = 0; i < modules.size(); ++i) {
    const nlohmann::json& m = modules[i];
    if (!m.is_object() || !m.contains("type") || !m["type"].is_string() || !m.contains("path") || !m["path"].is_string())
      fail(modules_path, ": module ", i, " has no \"type\" and \"path\" strings");
    std::string type = m["type"].get<std::string>();
    if (type.rfind(kPrefix, 0) == 0) type = type.substr(std::string(kPrefix).size());
    if (const size_t dot = type.find('.'); dot != std::string::npos) type = type.substr(0, dot);  // "Pooling.Pooling"
    const std::string folder = module_folder(root, modules_path, m["path"].get<std::string>());
    auto expect_first = [&](bool first) {
      if ((i == 0) != first)
        fail(modules_path, ": module ", i, " is a ", type, first ? ", which mmx runs only as the first module" : "; the first module must be a Transformer");
    };
    if (type == "Transformer") {
      expect_first(true);
      if (!dir_exists(folder)) fail(modules_path, ": module ", i, " names folder '", m["path"].get<std::string>(), "', which is missing");
      st->transformer_folder = folder;
      const std::string bert_config = join_path(folder, "sentence_bert_config.json");
      if (file_exists(bert_config)) {
        const JsonObject c = JsonObject::load(bert_config);
        if (c.has("max_seq_length")) st->max_seq_length = c.require_int("max_seq_length", limits::kTokenCount);
        st->do_lower_case = c.get_bool("do_lower_case", false);
      }
    } else if (type == "Pooling") {
      expect_first(false);
      if (i != 1) fail(modules_path, ": module ", i, " is a Pooling; mmx runs it right after the Transformer");
      const JsonObject c = JsonObject::load(join_path(folder, "config.json"));
      st->word_embedding_dimension = c.require_int("word_embedding_dimension", limits::kWidth);
      st->poolings = pooling_modes(c);
      st->include_prompt = c.get_bool("include_prompt", true);
      width = st->word_embedding_dimension * int64_t(st->poolings.size());
    } else if (type == "Dense") {
      expect_first(false);
      if (st->poolings.empty()) fail(modules_path, ": module ", i, " is a Dense before any Pooling");
      if (!dir_exists(folder)) fail(modules_path, ": module ", i, " names folder '", m["path"].get<std::string>(), "', which is missing");
      st->steps.push_back(read_dense(folder, width));
      width = st->steps.back().out_features;
    } else if (type == "Normalize") {  // no config: its folder may be absent
      expect_first(false);
      if (st->poolings.empty()) fail(modules_path, ": module ", i, " is a Normalize before any Pooling");
      SentenceTransformersFolder::Step step;
      step.folder = folder;
      st->steps.push_back(step);
    } else {
      fail(modules_path, ": module ", i, " is a '", m["type"].get<std::string>(),
           "', which mmx does not implement (Transformer, Pooling, Dense, Normalize)");
    }
  }
  if (st->transformer_folder.empty()) fail(modules_path, ": no Transformer module");
  if (st->poolings.empty()) fail(modules_path, ": no Pooling module");

  const std::string st_config = join_path(root, "config_sentence_transformers.json");
  if (file_exists(st_config)) {
    const JsonObject c = JsonObject::load(st_config);
    if (c.has("prompts")) {
      const nlohmann::json& prompts = c.json().at("prompts");
      if (!prompts.is_object()) fail(st_config, ": key 'prompts' is not an object of names and prompt strings");
      for (auto it = prompts.begin(); it != prompts.end(); ++it) {
        if (!it->is_string()) fail(st_config, ": prompt '", it.key(), "' is not a string");
        st->prompts[it.key()] = it->get<std::string>();
      }
    }
    st->default_prompt_name = c.get_optional_string("default_prompt_name");
    if (st->default_prompt_name && !st->prompts.count(*st->default_prompt_name))
      fail(st_config, ": key 'default_prompt_name' is '", *st->default_prompt_name, "', which is not one of its prompts");
    st->similarity_fn_name = c.get_optional_string("similarity_fn_name").value_or("cosine");
  }
  return st;
}

void SentenceTransformersFolder::load_dense_weights() {
  for (Step& step : steps) {
    if (step.kind != Step::Dense) continue;
    const Checkpoint weights = Checkpoint::open(step.folder);
    auto tensor = [&](const std::string& name, const Shape& shape) {
      const TensorInfo* info = weights.find(name);
      if (!info) fail(weights.source(), ": no tensor '", name, "' (a Dense module holds linear.weight and linear.bias)");
      if (info->shape != shape)
        fail(weights.file_of(name), ": tensor '", name, "': shape ", shape_str(info->shape), ", config.json implies ",
             shape_str(shape));
      return weights.get(name).to(DType::F32);
    };
    step.weight = tensor("linear.weight", {step.out_features, step.in_features});
    if (step.bias_term) step.bias = tensor("linear.bias", {step.out_features});
  }
}

int64_t SentenceTransformersFolder::output_dimension(int64_t pooled) const {
  for (const Step& s : steps)
    if (s.kind == Step::Dense) pooled = s.out_features;
  return pooled;
}

}  // namespace mmx
