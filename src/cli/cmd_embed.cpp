// mmx embed: text and image embeddings from a model folder, printed or written as safetensors, .npz, .npy or JSON.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>

#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/progress.hpp"
#include "mmx/embed.hpp"
#include "mmx/files.hpp"
#include "mmx/image.hpp"
#include "mmx/npy.hpp"
#include "mmx/safetensors.hpp"

namespace mmx::cli {

const Command kEmbedCommand{
    "embed",
    "mmx embed --model MODEL ((--text T)... [--texts-file FILE] | (--image PATH)...) [--pooling MODE] [--normalize]\n"
    "                 [--output FILE] [--token-embeddings]",
    "Embed texts (BERT, RoBERTa, XLM-R, MPNet, DistilBERT), images (ViT), or both in one space (CLIP), as Hugging\n"
    "Face computes them.",
    {
        {"model", "MODEL", "a folder written by save_pretrained, or a Hub id (bert-base-uncased, org/name[@revision])"},
        text_option("text", "T", "a text to embed", true),
        {"texts-file", "FILE", "UTF-8 file, one text per line (empty lines skipped); - reads standard input"},
        texts_limit_option(),
        {"image", "PATH", "an image (PNG, JPEG, WebP, GIF, TIFF, BMP), a folder of them, or a quoted pattern ('photos/*.jpg')", true},
        skip_bad_images_option(),
        {"pooling", "MODE",
         "cls | pooler | mean | mean-no-cls | lab | max | mean-sqrt-len | weightedmean | lasttoken (default: mean-no-cls for BERT, mean for RoBERTa, XLM-R, MPNet, DistilBERT); "
         "CLIP: projection (default) | pooled; a sentence-transformers folder: modules (default)",
         false, pooling_names()},
        {"prompt-name", "NAME", "a sentence-transformers folder's prompt by name (config_sentence_transformers.json: query, passage, ...)"},
        text_option("prompt", "P", "a prefix for every text (sentence-transformers' encode(prompt=...)); wins over --prompt-name"),
        {"normalize", "", "L2-normalise each embedding"},
        {"max-length", "N", "truncate texts to N tokens (default: the model's limit)"},
        {"output", "FILE", ".safetensors, .npz, .npy or .json; - prints the JSON; without it a summary is printed"},
        {"json", "", "print the JSON document to standard output (as --output -)"},
        {"token-embeddings", "", "also write last_hidden_state, input_ids, attention_mask"},
        {"batch-tokens", "N", "the most tokens one forward pass takes (default 16384); fewer use less memory"},
        {"batch-size", "N", "the most texts or images one forward pass takes (sentence-transformers' batch_size; default: what --batch-tokens allows)"},
        {"progress", "", "a progress line also when stderr is not a terminal (a log); on one it shows by itself"},
    },
    R"(pooling modes:
  cls          last_hidden_state[:, 0]
  pooler       pooler_output (dense + tanh on [CLS]); needs pooler weights
  mean         mean over all real tokens (attention_mask = 1)
  mean-no-cls  mean over real tokens except [CLS] (images: over the patches) — what the lab means
  lab          the lab's literal formula sum(h[:, 1:], 1) / (mask.sum(1) - 1), which also sums
               the hidden states of padding positions; use it to reproduce the lab's figures
               (for images, which have no padding, it equals mean-no-cls)
  projection   CLIP: get_text_features / get_image_features, unnormalised as the lab uses them
  pooled       CLIP: the pooled output before the projection (end-of-text token / post-normed class token)
  max, mean-sqrt-len, weightedmean, lasttoken
               sentence-transformers' Pooling modes: the per-dimension max over real tokens, the sum over
               sqrt(token count), the mean weighted by position 1..L, the last real token
  modules      a sentence-transformers folder (modules.json), its default: the folder's Pooling module,
               then its Dense and Normalize modules, as SentenceTransformer.encode. Another --pooling
               takes the Pooling module's place; Dense and Normalize still follow.

sentence-transformers folders (all-MiniLM-L6-v2, bge-small-en-v1.5, e5-small-v2, ...) embed as
SentenceTransformer(model).encode(texts) with no flags: texts stripped (and lowercased where
sentence_bert_config.json says), cut at max_seq_length, the default prompt applied if the folder names
one. --prompt-name query adds the folder's "query" prompt; --prompt "query: " any prefix.
All texts form one padded batch, as in the lab (tokenizer(texts, padding=True)); large batches are
split internally without changing any number. Images are decoded as Pillow does (no EXIF rotation)
and preprocessed exactly as the folder's Hugging Face image processor, a few dozen at a time, so a
folder of thousands of photos needs the memory of a few dozen. A run that takes more than half a
second shows its progress on a terminal.

outputs: .safetensors holds `embeddings` [N, D] F32 (+ with --token-embeddings: `last_hidden_state`
[N, L, D], and `input_ids`, `attention_mask` [N, L] I64 for texts or `pixel_values` [N, 3, H, W]
for images); .npz the same arrays for numpy.load; .npy the embeddings alone; .json (or --json, or
--output - to standard output) the inputs' names, the embeddings (and token outputs). Texts and
images of one CLIP folder: `text_embeddings` and `image_embeddings`. Files are written atomically.

example:
  mmx embed --model tests/data/models/bert-tiny --text "Cat with paint" --text "rock statue" \
            --pooling lab --output lab.safetensors
  mmx embed --model tests/data/models/vit-tiny --image tests/data/images/chelsea.png --image 'tests/data/images/*.png'
  mmx embed --model tests/data/models/clip-tiny --text "A tabby cat" --image tests/data/images/chelsea.png
)",
};

namespace {

// One embedded set: texts or images, with their names and results.
struct EmbeddedSet {
  bool images;
  std::vector<std::string> names;  // texts, or image paths
  EmbedResult result;
  std::string description;
};

void print_summary(const std::string& model, const EmbeddedSet& set, bool normalize) {
  const int64_t n = set.result.embeddings.dim(0), d = set.result.embeddings.dim(1);
  std::printf("model: %s (%s)\npooling: %s%s; ", model.c_str(), set.description.c_str(), pooling_name(set.result.pooling),
              normalize ? ", L2-normalised" : "");
  if (set.images) std::printf("%lld images\n", static_cast<long long>(n));
  else std::printf("%lld texts, one batch padded to %lld tokens\n", static_cast<long long>(n),
                   static_cast<long long>(set.result.input_ids.dim(1)));
  std::printf("%s [%lld, %lld] F32\n", set.images ? "image embeddings" : "text embeddings", static_cast<long long>(n),
              static_cast<long long>(d));
  for (int64_t r = 0; r < n; ++r) {
    const float* e = set.result.embeddings.data<float>() + r * d;
    double norm = 0;
    for (int64_t i = 0; i < d; ++i) norm += double(e[i]) * e[i];
    std::string preview;
    for (int64_t i = 0; i < std::min<int64_t>(d, 4); ++i) preview += (i ? ", " : "") + std::to_string(e[i]);
    const std::string& name = set.names[r];
    const std::string label = name.size() > 40 ? "..." + name.substr(name.size() - 37) : name;
    std::printf("  %3lld  %-42s [%s%s]  |e| = %.4f\n", static_cast<long long>(r), ("\"" + label + "\"").c_str(),
                preview.c_str(), d > 4 ? ", ..." : "", std::sqrt(norm));
  }
}

// Rows of `part` into `whole` from row `at` on; `whole` is made by the first part, with room for `rows`.
void put_rows(Tensor& whole, const Tensor& part, int64_t at, int64_t rows) {
  if (!part.defined()) return;
  if (!whole.defined()) {
    Shape shape = part.shape();
    shape[0] = rows;
    whole = Tensor::empty(shape, part.dtype());
  }
  std::memcpy(whole.narrow0(at, part.dim(0)).raw_mutable(), part.raw(), part.nbytes());
}

// Images a chunk at a time: decoded, preprocessed and embedded, then let go, so memory holds a chunk of
// decoded photos, not a whole folder. Each image's result is its own (ImageEmbedder), so chunking changes
// no number. The model loads after the first chunk decodes: a bad first file fails before the load.
constexpr int64_t kImagesPerChunk = 64;
EmbedResult embed_images(const std::string& model, const Placement& placement, std::vector<std::string>& paths,
                         const EmbedOptions& options, bool skip_bad, bool show_progress,
                         std::unique_ptr<ImageEmbedder>& embedder) {
  const int64_t total = static_cast<int64_t>(paths.size());
  ProgressLine progress("embedding images", total, show_progress);
  std::vector<std::string> kept;
  EmbedResult result;
  int64_t rows = 0;
  for (int64_t start = 0; start < total; start += kImagesPerChunk) {
    std::vector<std::string> chunk(paths.begin() + start, paths.begin() + std::min(total, start + kImagesPerChunk));
    const std::vector<Image> images = decode_images(chunk, skip_bad);
    if (!embedder) embedder = ImageEmbedder::load(model, placement);
    if (!images.empty()) {
      EmbedOptions chunk_options = options;
      chunk_options.progress = [&](int64_t done, int64_t) { progress.update(start + done); };
      const EmbedResult part = embedder->embed(images, chunk_options);
      result.pooling = part.pooling;
      put_rows(result.embeddings, part.embeddings, rows, total);
      put_rows(result.last_hidden_state, part.last_hidden_state, rows, total);
      put_rows(result.pixel_values, part.pixel_values, rows, total);
      rows += static_cast<int64_t>(images.size());
      kept.insert(kept.end(), chunk.begin(), chunk.end());
    }
    progress.update(std::min(total, start + kImagesPerChunk));
  }
  progress.finish();
  if (rows == 0) fail("none of the ", total, " images could be decoded");
  for (Tensor* t : {&result.embeddings, &result.last_hidden_state, &result.pixel_values})
    if (t->defined() && rows < total) *t = t->narrow0(0, rows).clone();
  paths = std::move(kept);
  return result;
}

}  // namespace

int run_embed(const Args& args) {
  const auto model = args.get("model");
  if (!model) usage_error("--model MODEL is required");
  EmbedOptions options;
  if (auto p = args.get("pooling")) options.pooling = pooling_from_name(*p);
  options.normalize = args.has("normalize");
  options.prompt = args.get("prompt");
  options.prompt_name = args.get("prompt-name");
  options.token_embeddings = args.has("token-embeddings");
  options.max_length = args.get_int("max-length", 2);
  options.max_batch_tokens = args.get_int("batch-tokens", 1).value_or(options.max_batch_tokens);
  options.max_batch_size = args.get_int("batch-size", 1).value_or(0);
  const bool show_progress = args.has("progress");
  std::optional<std::string> output = args.get("output");
  if (args.has("json")) {
    if (output && *output != "-") usage_error("--json prints the JSON; --output writes a file: use one");
    output = "-";
  }
  const bool to_stdout = output && *output == "-";
  std::string ext = to_stdout ? ".json" : "";
  const bool want_images = args.has("image"), want_texts = args.has("text") || args.has("texts-file");
  if (output && !to_stdout) {
    ext = extension_of(*output);
    if (ext != ".safetensors" && ext != ".npz" && ext != ".npy" && ext != ".json")
      usage_error("--output '", *output, "': unknown extension (use .safetensors, .npz, .npy or .json, or - for standard output)");
    if (ext == ".npy" && (options.token_embeddings || (want_images && want_texts)))
      usage_error("several arrays to write (--token-embeddings, or texts and images): use .safetensors, .npz or .json, not .npy");
    check_output_path(*output);  // refuse a bad path before any work
  }
  const Placement placement = placement_of(args);
  std::vector<EmbeddedSet> sets;
  // Both embedders live to the end: while one holds the model, the other gets the same (one load).
  std::unique_ptr<TextEmbedder> text_embedder;
  std::unique_ptr<ImageEmbedder> image_embedder;
  if (want_texts || !want_images) {
    EmbeddedSet set{false, collect_texts(args), {}, {}};
    text_embedder = TextEmbedder::load(*model, placement);
    set.description = text_embedder->description();
    ProgressLine progress("embedding texts", static_cast<int64_t>(set.names.size()), show_progress);
    EmbedOptions text_options = options;
    text_options.progress = [&](int64_t done, int64_t) { progress.update(done); };
    set.result = text_embedder->embed(set.names, text_options);
    progress.finish();
    sets.push_back(std::move(set));
  }
  if (want_images) {
    EmbeddedSet set{true, collect_image_paths(args), {}, {}};
    set.result = embed_images(*model, placement, set.names, options, args.has("skip-bad-images"), show_progress,
                              image_embedder);
    set.description = image_embedder->description();
    sets.push_back(std::move(set));
  }

  if (!output) {
    for (size_t i = 0; i < sets.size(); ++i) {
      if (i) std::printf("\n");
      print_summary(*model, sets[i], options.normalize);
    }
    return 0;
  }
  // One set: `embeddings`; texts and images (CLIP): `text_embeddings` and `image_embeddings`.
  const bool both = sets.size() > 1;
  auto key = [&](const EmbeddedSet& set, const std::string& name) {
    return both ? std::string(set.images ? "image_" : "text_") + name : name;
  };
  if (ext == ".safetensors" || ext == ".npz") {
    std::vector<std::pair<std::string, Tensor>> tensors;
    std::map<std::string, std::string> metadata = {{"model", *model}, {"normalize", options.normalize ? "true" : "false"}};
    for (const auto& set : sets) {
      tensors.emplace_back(key(set, "embeddings"), set.result.embeddings);
      if (options.token_embeddings) {
        tensors.emplace_back(key(set, "last_hidden_state"), set.result.last_hidden_state);
        if (set.images) {
          tensors.emplace_back("pixel_values", set.result.pixel_values);
        } else {
          tensors.emplace_back("input_ids", set.result.input_ids);
          tensors.emplace_back("attention_mask", set.result.attention_mask);
        }
      }
      metadata[set.images ? "images" : "texts"] = json_text(set.names);
      metadata[key(set, "pooling")] = pooling_name(set.result.pooling);
    }
    if (ext == ".npz") write_npz(*output, tensors);
    else write_safetensors(*output, tensors, metadata);
  } else if (ext == ".npy") {
    write_npy(*output, sets[0].result.embeddings);
  } else {
    nlohmann::ordered_json j;
    j["model"] = *model;
    j["normalize"] = options.normalize;
    for (const auto& set : sets) {
      j[key(set, "pooling")] = pooling_name(set.result.pooling);
      j[set.images ? "images" : "texts"] = set.names;
      j[key(set, "embeddings")] = tensor_to_json(set.result.embeddings);
      if (options.token_embeddings && !set.images) {
        j["input_ids"] = tensor_to_json(set.result.input_ids);
        j["attention_mask"] = tensor_to_json(set.result.attention_mask);
      }
      if (options.token_embeddings) j[key(set, "last_hidden_state")] = tensor_to_json(set.result.last_hidden_state);
    }
    if (to_stdout) {
      std::fputs((json_text(j) + "\n").c_str(), stdout);
      return 0;
    }
    write_file_atomically(*output, json_text(j) + "\n");
  }
  for (const auto& set : sets)
    if (chatty()) std::fprintf(stderr, "wrote %s: %s [%lld, %lld]\n", output->c_str(), key(set, "embeddings").c_str(),
                 static_cast<long long>(set.result.embeddings.dim(0)), static_cast<long long>(set.result.embeddings.dim(1)));
  return 0;
}

}  // namespace mmx::cli
