// Embeddings of texts and images (src/pipelines/embed.cpp): tokenizer or image processor, the model's
// encoder, pooling, as the lab and Hugging Face compute them. One embedder serves every architecture of
// the registry; texts are batched by one rule (a token budget over length-sorted texts).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mmx/image.hpp"
#include "mmx/model.hpp"
#include "mmx/tensor.hpp"

namespace mmx {

struct EmbedOptions {
  // default: the model's (mean-no-cls for BERT and ViT, projection for CLIP, modules for a
  // sentence-transformers folder). On a sentence-transformers folder another pooling takes the place of its
  // Pooling module: the Dense and Normalize modules still follow, as they would in SentenceTransformer.
  std::optional<Pooling> pooling;
  bool normalize = false;             // L2-normalise each embedding
  // sentence-transformers' encode(prompt=..., prompt_name=...): a prefix for every text, given or named
  // from the folder's prompts; neither: the folder's default_prompt_name, if any. Only for such folders.
  std::optional<std::string> prompt, prompt_name;
  // For embed_encoded: how many leading tokens of every row are the prompt, which a Pooling module with
  // include_prompt false leaves out (embed() sets it; TextEmbedder::prompt_tokens computes it).
  int64_t prompt_tokens = 0;
  bool token_embeddings = false;      // also return last_hidden_state, input_ids, attention_mask
  std::optional<int64_t> max_length;  // truncation; default: the model's limit
  // The most tokens (rows × padded length) one forward pass takes. Texts are sorted by length and cut
  // into passes of at most this many tokens, each padded to its own longest text, which changes no
  // embedding: padding is masked. Where padding shows in the result (the lab's pooling sums the padding
  // positions; token embeddings return them) every pass keeps the whole batch's padded length instead.
  int64_t max_batch_tokens = 16384;
  // The most inputs one forward pass takes, within the token budget (0: no cap): sentence-transformers'
  // encode(batch_size=...), the Python module's default 32.
  int64_t max_batch_size = 0;
  // Called after each forward pass with the inputs embedded so far and their number (progress lines).
  std::function<void(int64_t done, int64_t total)> progress;
};

struct EmbedResult {
  Pooling pooling;           // the pooling used
  Tensor embeddings;         // [N, D] F32
  Tensor last_hidden_state;  // [N, L, D] (token_embeddings)
  Tensor input_ids;          // [N, L] I64 (texts), padded to the longest
  Tensor attention_mask;     // [N, L] I64 (texts)
  Tensor pixel_values;       // [N, 3, H, W] F32 (images, with token_embeddings)
};

class TextEmbedder {
 public:
  // A usage error when the model embeds no texts (a ViT).
  explicit TextEmbedder(std::shared_ptr<const Model> model);
  static std::unique_ptr<TextEmbedder> load(const std::string& model, const Placement& placement = {});
  EmbedResult embed(const std::vector<std::string>& texts, const EmbedOptions& options) const;
  // Texts already tokenized, one unpadded row each with its special tokens (options.max_length is not
  // applied: a row longer than the model's positions is an error): a server tokenizes on its request
  // threads and embeds the rows of several requests in one call. Same numbers as embed() on the texts.
  EmbedResult embed_encoded(const BatchEncoding& rows, const EmbedOptions& options) const;
  // The most tokens a text may have: the tokenizer's model_max_length (a sentence-transformers folder's
  // max_seq_length) within the position embeddings.
  int64_t max_length() const;
  // A text as SentenceTransformer.encode hands it to the tokenizer: the prompt (options.prompt, else the
  // prompt named, else the folder's default) prefixed, surrounding whitespace stripped, lowercased where
  // sentence_bert_config.json says do_lower_case. Other models: the text unchanged.
  std::string prepare(const std::string& text, const EmbedOptions& options) const;
  // The prompt's tokens at the start of a prepared text (its tokenization without the closing special
  // token, as SentenceTransformer counts it); 0 without a prompt.
  int64_t prompt_tokens(const EmbedOptions& options) const;
  const Model& model() const { return *model_; }
  const Tokenizer& tokenizer() const { return model_->tokenizer(); }
  std::string description() const { return model_->description(); }
  std::optional<float> logit_scale() const { return model_->logit_scale(); }

 private:
  std::shared_ptr<const Model> model_;
};

// Images of any sizes; each is preprocessed on its own, so no image's result depends on the others.
// Poolings: cls, pooler, mean (all tokens), mean-no-cls (the patches: the lab's image_avg_embeds; `lab`
// is mean-no-cls here, as images have no padding); CLIP: projection, pooled.
class ImageEmbedder {
 public:
  explicit ImageEmbedder(std::shared_ptr<const Model> model);  // a usage error when it embeds no images
  static std::unique_ptr<ImageEmbedder> load(const std::string& model, const Placement& placement = {});
  EmbedResult embed(const std::vector<Image>& images, const EmbedOptions& options) const;
  const Model& model() const { return *model_; }
  const ImageProcessorConfig& processor() const { return model_->image_processor(); }
  std::string description() const { return model_->description(); }
  std::optional<float> logit_scale() const { return model_->logit_scale(); }

 private:
  std::shared_ptr<const Model> model_;
};

}  // namespace mmx
