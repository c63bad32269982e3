// A sentence-transformers folder (SentenceTransformer.save): modules.json lists the modules applied in
// order — a Transformer (the Hugging Face model in the root or a subfolder), a Pooling, optional Dense
// layers and a Normalize — with each module's config in its folder, and config_sentence_transformers.json
// the prompts and the similarity function. This reads them as SentenceTransformer(path) does (the Dense
// weights only when a model is loaded); the embedder applies them (pipelines/embed.cpp).
#pragma once
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backend/ops.hpp"
#include "mmx/embedding_space.hpp"
#include "mmx/tensor.hpp"

namespace mmx {

struct SentenceTransformersFolder {
  // A module after pooling, in modules.json's order: a Dense layer (nn.Linear + activation) or Normalize.
  struct Step {
    enum Kind { Dense, Normalize } kind = Normalize;
    std::string folder;    // for messages
    int64_t in_features = 0, out_features = 0;  // Dense: from its config.json
    bool bias_term = true;                       // ... its "bias"
    Tensor weight, bias;   // Dense, after load_dense_weights: [out_features, in_features] F32, [out_features] F32
    ops::Activation activation = ops::Activation::Identity;
  };

  std::string root;                       // the folder holding modules.json
  std::string transformer_folder;         // the Transformer module's folder: root, or root/0_Transformer
  std::optional<int64_t> max_seq_length;  // sentence_bert_config.json: truncation (default: the model's limit)
  bool do_lower_case = false;             // ... texts lowercased before tokenizing
  std::vector<Pooling> poolings;          // the Pooling module's modes, concatenated in this order
  bool include_prompt = true;             // false: prompt tokens are left out of the pooling
  int64_t word_embedding_dimension = 0;   // what the Pooling module expects of the Transformer
  std::vector<Step> steps;                // Dense and Normalize modules after the pooling
  std::map<std::string, std::string> prompts;  // config_sentence_transformers.json: name → prefix
  std::optional<std::string> default_prompt_name;
  std::string similarity_fn_name = "cosine";   // "cosine" when unset, as SentenceTransformer defaults

  // Whether `folder` holds modules.json.
  static bool present(const std::string& folder);
  // Reads modules.json and every module's config (no weights: what a check before loading needs); an
  // unknown module type, a module folder that is missing or a bad key is an error naming the file and key.
  static std::shared_ptr<const SentenceTransformersFolder> read(const std::string& root);
  // Reads the Dense modules' weights (linear.weight, linear.bias); a missing tensor or one of another shape
  // than the config's is an error naming the file and tensor.
  void load_dense_weights();
  // The output width of the modules for a pooled width of `pooled` (Dense layers change it).
  int64_t output_dimension(int64_t pooled) const;
};

}  // namespace mmx
