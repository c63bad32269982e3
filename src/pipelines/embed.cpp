// The embedder: texts through the model's tokenizer and text encoder, images through its image processor
// and vision encoder, then pooling. One path for every architecture of the registry, with one batching
// rule: texts are cut into forward passes of at most max_batch_tokens, length-sorted so that each pass pads
// little, unless the result shows padding (the lab's pooling, token embeddings), where every pass keeps the
// whole batch's padded length as the lab's one padded batch does.
#include "mmx/embed.hpp"

#include <algorithm>
#include <cstring>
#include <numeric>

#include "core/log.hpp"
#include "models/registry.hpp"
#include "pipelines/pooling.hpp"
#include "text/unicode.hpp"

namespace mmx {
namespace {

using detail::l2_normalize;
using detail::pool;

std::string pooling_list(const std::vector<Pooling>& poolings) {
  std::string s;
  for (size_t i = 0; i < poolings.size(); ++i)
    s += std::string(i == 0 ? "" : i + 1 == poolings.size() ? " or " : ", ") + pooling_name(poolings[i]);
  return s;
}

Pooling choose_pooling(const std::vector<Pooling>& allowed, const std::optional<Pooling>& asked, const std::string& name) {
  const Pooling p = asked.value_or(allowed.front());
  if (std::find(allowed.begin(), allowed.end(), p) == allowed.end())
    usage_error("--pooling ", pooling_name(p), " is not a ", name, " pooling (", name, " takes ", pooling_list(allowed), ")");
  return p;
}

// The text poolings of a model: its architecture's, and first (the default) a sentence-transformers
// folder's own modules.
std::vector<Pooling> text_poolings(const Model& model) {
  std::vector<Pooling> p = model.registry_entry().text_poolings;
  if (model.sentence_transformers()) p.insert(p.begin(), Pooling::Modules);
  return p;
}

// What a pooling needs of the checkpoint, asked before any work.
template <class Encoder>
void check_available(Pooling pooling, const Encoder& encoder, const char* projection_name) {
  if ((pooling == Pooling::Pooler || pooling == Pooling::Pooled) && !encoder.has_pooler())
    throw Error(ErrorKind::Runtime,
                str("this checkpoint has no pooler weights (pooler.dense.*), so --pooling ", pooling_name(pooling),
                    " is unavailable (transformers would use a randomly initialised pooler)"),
                "use --pooling cls, mean or mean-no-cls");
  if (pooling == Pooling::Projection && !encoder.has_projection())
    throw Error(ErrorKind::Runtime, str("this checkpoint has no ", projection_name, ", so --pooling projection is unavailable"),
                "use --pooling pooled (the pooled output before the projection)");
}

// One embedding per row of an encoder's outputs.
template <class Encoder>
Tensor pooled_rows(Pooling pooling, const Encoder& encoder, const EncoderOutputs& out, const Tensor& mask) {
  switch (pooling) {
    case Pooling::Projection: return encoder.project(out.pooler_output);
    case Pooling::Pooler:
    case Pooling::Pooled: return out.pooler_output;
    default: return pool(pooling, out.last_hidden_state, mask);
  }
}

// A sentence-transformers folder's modules after the Transformer: its Pooling (or, in its place, the
// pooling asked for), then its Dense and Normalize modules in order.
Tensor sentence_transformers_rows(const SentenceTransformersFolder& st, Pooling pooling, const TextEncoder& encoder,
                                  const EncoderOutputs& out, const Tensor& mask, int64_t prompt_tokens) {
  const Tensor& hidden = out.last_hidden_state;
  if (hidden.dim(2) != st.word_embedding_dimension)
    fail(st.root, ": the Pooling module expects word_embedding_dimension ", st.word_embedding_dimension,
         ", but the Transformer gives ", hidden.dim(2));
  Tensor pool_mask = mask;
  if (!st.include_prompt && prompt_tokens > 0) {  // Pooling.forward: attention_mask[:, :prompt_length] = 0
    pool_mask = mask.clone();
    int64_t* m = pool_mask.data<int64_t>();
    const int64_t rows = mask.dim(0), len = mask.dim(1);
    for (int64_t r = 0; r < rows; ++r) std::fill(m + r * len, m + r * len + std::min(prompt_tokens, len), int64_t(0));
  }
  Tensor x;
  if (pooling != Pooling::Modules) {
    x = pooled_rows(pooling, encoder, out, pool_mask);
  } else if (st.poolings.size() == 1) {
    x = pool(st.poolings[0], hidden, pool_mask);
  } else {  // several modes: concatenated in the module's order
    const int64_t rows = hidden.dim(0), d = hidden.dim(2), k = int64_t(st.poolings.size());
    x = Tensor::empty({rows, d * k});
    for (int64_t j = 0; j < k; ++j) {
      const Tensor part = pool(st.poolings[size_t(j)], hidden, pool_mask);
      for (int64_t r = 0; r < rows; ++r)
        std::memcpy(x.data<float>() + (r * k + j) * d, part.data<float>() + r * d, sizeof(float) * size_t(d));
    }
  }
  for (const SentenceTransformersFolder::Step& step : st.steps) {
    if (step.kind == SentenceTransformersFolder::Step::Normalize) {
      l2_normalize(x);
      continue;
    }
    if (x.dim(1) != step.in_features)
      usage_error("--pooling ", pooling_name(pooling), " gives ", x.dim(1), " values, but the Dense module in ", step.folder,
                  " takes ", step.in_features);
    ops::LinearFusion fusion;
    fusion.act = step.activation;
    x = ops::linear(x, step.weight, ops::PackedWeight{}, step.bias, fusion);
  }
  return x;
}

// Rows of `part` into rows `at[i]` of `whole` (same trailing shape).
void scatter_rows(const Tensor& part, const std::vector<size_t>& at, Tensor& whole) {
  const size_t row_bytes = part.dim(0) ? part.nbytes() / size_t(part.dim(0)) : 0;
  for (size_t i = 0; i < at.size(); ++i)
    std::memcpy(static_cast<char*>(whole.raw_mutable()) + at[i] * row_bytes, static_cast<const char*>(part.raw()) + i * row_bytes,
                row_bytes);
}

// The rows `which` of an unpadded encoding as one batch padded to `length`, as tokenizer(padding=...) pads.
BatchEncoding padded(const BatchEncoding& all, const std::vector<size_t>& which, size_t length, int64_t pad_id) {
  BatchEncoding b;
  for (size_t i : which) {
    Encoding e = all.rows[i];
    e.input_ids.resize(length, pad_id);
    e.token_type_ids.resize(length, 0);
    e.attention_mask.resize(length, 0);
    b.rows.push_back(std::move(e));
  }
  return b;
}

struct Pass {
  std::vector<size_t> rows;  // indices into the inputs, ascending
  size_t length = 0;         // the padded length of this pass
};

// The forward passes for texts of these token counts under a budget of rows × padded length.
std::vector<Pass> plan_passes(const std::vector<size_t>& lengths, int64_t budget, int64_t max_rows, bool fixed_length) {
  const size_t longest = *std::max_element(lengths.begin(), lengths.end());
  const size_t row_cap = max_rows > 0 ? size_t(max_rows) : lengths.size();
  std::vector<Pass> passes;
  if (fixed_length) {  // padding shows in the result: every pass at the batch's length, in order
    const size_t per_pass =
        std::min(row_cap, size_t(std::max<int64_t>(1, budget / int64_t(std::max<size_t>(longest, 1)))));
    for (size_t r0 = 0; r0 < lengths.size(); r0 += per_pass) {
      Pass p{{}, longest};
      for (size_t i = r0; i < std::min(lengths.size(), r0 + per_pass); ++i) p.rows.push_back(i);
      passes.push_back(std::move(p));
    }
    return passes;
  }
  std::vector<size_t> order(lengths.size());
  std::iota(order.begin(), order.end(), size_t(0));
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return lengths[a] < lengths[b]; });
  for (size_t i : order) {  // shortest first; a pass closes when one more text would exceed the budget
    if (passes.empty() || passes.back().rows.size() >= row_cap ||
        int64_t(passes.back().rows.size() + 1) * int64_t(std::max(passes.back().length, lengths[i])) > budget)
      passes.push_back({});
    passes.back().rows.push_back(i);
    passes.back().length = std::max(passes.back().length, lengths[i]);
  }
  for (Pass& p : passes) std::sort(p.rows.begin(), p.rows.end());  // one pass holding every text is the plain batch
  return passes;
}

}  // namespace

TextEmbedder::TextEmbedder(std::shared_ptr<const Model> model) : model_(std::move(model)) {
  if (!model_->has_text())
    usage_error(model_->path(), ": a ", model_->architecture(), " model embeds images, not texts (use --image)");
}

namespace {
// NaN or inf out of a model (a config such as a negative layer_norm_eps, weights out of range) would be
// written as numbers and ranked: an error naming the stage that produced them instead.
void check_finite(const Tensor& t, const std::string& model, const char* stage, int64_t inputs, const char* kind) {
  if (!all_finite(t))
    throw Error(ErrorKind::Runtime,
                str(model, " produced non-finite values (NaN or inf) in its ", stage, " for a batch of ", inputs, " ", kind),
                "the model's config.json (layer_norm_eps, scales) or its weights do not make a working model");
}

// The prompt SentenceTransformer.encode prefixes: given, else named, else the folder's default.
std::optional<std::string> chosen_prompt(const SentenceTransformersFolder* st, const EmbedOptions& options) {
  if (!st) {
    if (options.prompt || options.prompt_name)
      usage_error(options.prompt ? "--prompt" : "--prompt-name", " applies to sentence-transformers folders (modules.json) only");
    return std::nullopt;
  }
  if (options.prompt) {
    if (options.prompt_name) log_warn("both a prompt and a prompt name given: the prompt is used, as sentence-transformers does");
    return options.prompt;
  }
  if (options.prompt_name) {
    const auto it = st->prompts.find(*options.prompt_name);
    if (it == st->prompts.end()) {
      std::string names;
      for (const auto& [name, text] : st->prompts) names += str(names.empty() ? "" : ", ", name);
      usage_error("prompt name '", *options.prompt_name, "' is not among the model's prompts (",
                  names.empty() ? std::string("it has none") : names, "; config_sentence_transformers.json)");
    }
    return it->second;
  }
  if (st->default_prompt_name) return st->prompts.at(*st->default_prompt_name);
  return std::nullopt;
}

// Transformer.tokenize: str(s).strip(), then .lower() where do_lower_case.
std::string strip_and_lower(const std::string& text, bool lower) {
  std::u32string u = text::utf8_to_u32(text);
  size_t begin = 0, end = u.size();
  while (begin < end && text::is_python_space(u[begin])) ++begin;
  while (end > begin && text::is_python_space(u[end - 1])) --end;
  u = u.substr(begin, end - begin);
  if (lower) u = text::python_lower(u);
  return text::u32_to_utf8(u);
}

// The text encode() tokenizes: the prompt prefixed, stripped, lowercased where the folder says.
std::string prepared_text(const SentenceTransformersFolder* st, const std::optional<std::string>& prompt, const std::string& text) {
  return st ? strip_and_lower(prompt.value_or("") + text, st->do_lower_case) : text;
}

// The prompt's tokens at the start of a prepared text. Both tokenizers close a text with a special token
// ([SEP], <|endoftext|>), which is not the prompt's.
int64_t prompt_token_count(const SentenceTransformersFolder* st, const std::optional<std::string>& prompt,
                           const Tokenizer& tokenizer) {
  if (!st || !prompt || prompt->empty()) return 0;
  const auto ids = tokenizer.encode(strip_and_lower(*prompt, st->do_lower_case)).input_ids;
  return std::max<int64_t>(0, int64_t(ids.size()) - 1);
}
}  // namespace

std::unique_ptr<TextEmbedder> TextEmbedder::load(const std::string& model, const Placement& placement) {
  const ModelFolder folder = open_model_folder(model);  // refused before any weight is read
  if (!folder.architecture->tokenizer)
    usage_error(folder.path, ": a ", folder.architecture->display_name, " model embeds images, not texts (use --image)");
  return std::make_unique<TextEmbedder>(
      Model::load(folder.sentence_transformers ? folder.sentence_transformers->root : folder.path, placement));
}

EmbedResult TextEmbedder::embed(const std::vector<std::string>& texts, const EmbedOptions& options) const {
  if (texts.empty()) usage_error("no texts to embed");
  const Architecture& a = model_->registry_entry();
  const TextEncoder& encoder = *model_->parts().text();
  choose_pooling(text_poolings(*model_), options.pooling, a.display_name);  // a wrong pooling is refused before any work
  const Tokenizer& tokenizer = model_->tokenizer();
  const int64_t limit = options.max_length.value_or(max_length());
  if (limit > encoder.max_positions())
    usage_error("--max-length ", limit, " exceeds the model's max_position_embeddings ", encoder.max_positions());
  const SentenceTransformersFolder* st = model_->sentence_transformers();
  const std::optional<std::string> prompt = chosen_prompt(st, options);  // once: its checks and notices once
  std::vector<std::string> prepared;
  prepared.reserve(texts.size());
  for (const std::string& t : texts) prepared.push_back(prepared_text(st, prompt, t));
  EmbedOptions with_prompt = options;
  with_prompt.prompt_tokens = prompt_token_count(st, prompt, tokenizer);
  // Texts over the limit are cut (transformers would fail on them), and named.
  BatchEncoding batch = tokenizer.encode_batch(prepared, Padding::None);
  std::string cut;
  for (size_t i = 0; i < texts.size(); ++i)
    if (static_cast<int64_t>(batch.rows[i].input_ids.size()) > limit)
      cut += str(cut.empty() ? "" : ", ", "text ", i + 1, " (", batch.rows[i].input_ids.size(), " tokens)");
  if (!cut.empty()) {
    const std::string message = str(a.display_name, " reads at most ", limit, " tokens; truncated: ", cut);
    // sentence-transformers truncates at max_seq_length by design: said, not warned.
    if (st) log_info(message);
    else log_warn(message);
    batch = tokenizer.encode_batch(prepared, Padding::None, limit);
  }
  return embed_encoded(batch, with_prompt);
}

int64_t TextEmbedder::max_length() const {
  const SentenceTransformersFolder* st = model_->sentence_transformers();
  const int64_t limit = st && st->max_seq_length ? *st->max_seq_length : model_->tokenizer().model_max_length();
  return std::min(limit, model_->parts().text()->max_positions());
}

std::string TextEmbedder::prepare(const std::string& text, const EmbedOptions& options) const {
  const SentenceTransformersFolder* st = model_->sentence_transformers();
  return prepared_text(st, chosen_prompt(st, options), text);
}

int64_t TextEmbedder::prompt_tokens(const EmbedOptions& options) const {
  const SentenceTransformersFolder* st = model_->sentence_transformers();
  return prompt_token_count(st, chosen_prompt(st, options), model_->tokenizer());
}

EmbedResult TextEmbedder::embed_encoded(const BatchEncoding& batch, const EmbedOptions& options) const {
  if (batch.rows.empty()) usage_error("no texts to embed");
  const Architecture& a = model_->registry_entry();
  const TextEncoder& encoder = *model_->parts().text();
  const Pooling pooling = choose_pooling(text_poolings(*model_), options.pooling, a.display_name);
  check_available(pooling, encoder, "text_projection (a CLIPTextModel)");
  if (options.max_batch_tokens < 1) usage_error("max_batch_tokens must be at least 1");
  if (options.max_batch_size < 0) usage_error("batch size ", options.max_batch_size, " is negative");
  const Tokenizer& tokenizer = model_->tokenizer();
  const size_t count = batch.rows.size();
  for (size_t i = 0; i < count; ++i) {
    const size_t n = batch.rows[i].input_ids.size();
    if (n == 0 || int64_t(n) > encoder.max_positions())
      usage_error("input ", i + 1, " has ", n, " tokens; the model takes 1 to ", encoder.max_positions());
  }
  std::vector<size_t> lengths;
  for (const auto& r : batch.rows) lengths.push_back(r.input_ids.size());
  const size_t longest = *std::max_element(lengths.begin(), lengths.end());
  std::vector<size_t> everyone(count);
  std::iota(everyone.begin(), everyone.end(), size_t(0));
  const BatchEncoding whole = padded(batch, everyone, longest, tokenizer.pad_token_id());

  EmbedResult result;
  result.pooling = pooling;
  result.input_ids = whole.input_ids();
  result.attention_mask = whole.attention_mask();
  const bool fixed_length = pooling == Pooling::Lab || options.token_embeddings;
  int64_t done = 0;
  for (const Pass& pass : plan_passes(lengths, options.max_batch_tokens, options.max_batch_size, fixed_length)) {
    const BatchEncoding b = padded(batch, pass.rows, pass.length, tokenizer.pad_token_id());
    const Tensor mask = b.attention_mask();
    const EncoderOutputs out = encoder.forward(b.input_ids(), b.token_type_ids(), mask);
    const SentenceTransformersFolder* st = model_->sentence_transformers();
    const Tensor e = st ? sentence_transformers_rows(*st, pooling, encoder, out, mask, options.prompt_tokens)
                        : pooled_rows(pooling, encoder, out, mask);
    check_finite(out.last_hidden_state, a.display_name, "last hidden state", int64_t(pass.rows.size()), "texts");
    check_finite(e, a.display_name, "pooled embedding", int64_t(pass.rows.size()), "texts");
    if (!result.embeddings.defined()) result.embeddings = Tensor::empty({int64_t(count), e.dim(1)});
    scatter_rows(e, pass.rows, result.embeddings);
    if (options.token_embeddings) {
      const Tensor& h = out.last_hidden_state;
      if (!result.last_hidden_state.defined())
        result.last_hidden_state = Tensor::empty({int64_t(count), h.dim(1), h.dim(2)});
      scatter_rows(h, pass.rows, result.last_hidden_state);
    }
    done += int64_t(pass.rows.size());
    if (options.progress) options.progress(done, int64_t(count));
  }
  if (options.normalize) l2_normalize(result.embeddings);
  return result;
}

ImageEmbedder::ImageEmbedder(std::shared_ptr<const Model> model) : model_(std::move(model)) {
  if (!model_->has_vision())
    usage_error(model_->path(), ": a ", model_->architecture(), " model embeds texts, not images (use --text)");
}

std::unique_ptr<ImageEmbedder> ImageEmbedder::load(const std::string& model, const Placement& placement) {
  const ModelFolder folder = open_model_folder(model);
  if (folder.architecture->image_processor.empty())
    usage_error(folder.path, ": a ", folder.architecture->display_name, " model embeds texts, not images (use --text)");
  return std::make_unique<ImageEmbedder>(Model::load(folder.path, placement));
}

EmbedResult ImageEmbedder::embed(const std::vector<Image>& images, const EmbedOptions& options) const {
  if (images.empty()) usage_error("no images to embed");
  const Architecture& a = model_->registry_entry();
  const VisionEncoder& encoder = *model_->parts().vision();
  const Pooling pooling = choose_pooling(a.image_poolings, options.pooling, a.display_name);
  check_available(pooling, encoder, "visual_projection");
  if (options.max_batch_tokens < 1) usage_error("max_batch_tokens must be at least 1");
  if (options.max_batch_size < 0) usage_error("batch size ", options.max_batch_size, " is negative");
  // With no padding, the lab's formula is the mean over the patches.
  const Pooling applied = pooling == Pooling::Lab ? Pooling::MeanNoCls : pooling;
  const Tensor pixel_values = preprocess_images(images, model_->image_processor());  // [N, 3, H, W]
  if (!all_finite(pixel_values))
    fail("image preprocessing produced non-finite pixel values: check rescale_factor, image_mean and image_std in the "
         "model's preprocessor_config.json");
  const int64_t n = pixel_values.dim(0), tokens = encoder.tokens();
  int64_t per_pass = std::max<int64_t>(1, options.max_batch_tokens / tokens);
  if (options.max_batch_size > 0) per_pass = std::min(per_pass, options.max_batch_size);
  EmbedResult result;
  result.pooling = pooling;
  for (int64_t row0 = 0; row0 < n; row0 += per_pass) {
    const int64_t rows = std::min(per_pass, n - row0);
    const EncoderOutputs out = encoder.forward(pixel_values.narrow0(row0, rows).clone());
    const Tensor mask = Tensor::from_vector(std::vector<int64_t>(size_t(rows * out.last_hidden_state.dim(1)), 1),
                                            {rows, out.last_hidden_state.dim(1)});
    const Tensor e = pooled_rows(applied, encoder, out, mask);
    check_finite(out.last_hidden_state, a.display_name, "last hidden state", rows, "images");
    check_finite(e, a.display_name, "pooled embedding", rows, "images");
    std::vector<size_t> at(static_cast<size_t>(rows));
    std::iota(at.begin(), at.end(), size_t(row0));
    if (!result.embeddings.defined()) result.embeddings = Tensor::empty({n, e.dim(1)});
    scatter_rows(e, at, result.embeddings);
    if (options.token_embeddings) {
      const Tensor& h = out.last_hidden_state;
      if (!result.last_hidden_state.defined()) result.last_hidden_state = Tensor::empty({n, h.dim(1), h.dim(2)});
      scatter_rows(h, at, result.last_hidden_state);
    }
    if (options.progress) options.progress(row0 + rows, n);
  }
  if (options.normalize) l2_normalize(result.embeddings);
  if (options.token_embeddings) result.pixel_values = pixel_values;
  return result;
}

}  // namespace mmx
