// mmx embed: text embeddings from a model folder, written as safetensors, .npy or JSON.
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "mmx/embed.hpp"
#include "mmx/files.hpp"
#include "mmx/image.hpp"
#include "mmx/safetensors.hpp"

namespace mmx::cli {

const Command kEmbedCommand{
    "embed",
    "mmx embed --model DIR ((--text T)... [--texts-file FILE] | (--image PATH)...) [--pooling MODE] [--normalize]\n"
    "                 [--output FILE] [--token-embeddings]",
    "Embed texts with a BERT folder, or images with a ViT folder (config.json, model.safetensors, and\n"
    "vocab.txt or preprocessor_config.json).",
    {
        {"model", "DIR", "model folder as written by save_pretrained"},
        {"text", "T", "a text to embed", true},
        {"texts-file", "FILE", "UTF-8 file, one text per line (empty lines skipped)"},
        {"image", "PATH", "a PNG/JPEG image, a folder of them, or a quoted pattern ('photos/*.jpg')", true},
        skip_bad_images_option(),
        {"pooling", "MODE", "cls | pooler | mean | mean-no-cls | lab (default: mean-no-cls)"},
        {"normalize", "", "L2-normalise each embedding"},
        {"max-length", "N", "truncate texts to N tokens (default: the model's limit)"},
        {"output", "FILE", ".safetensors, .npy or .json; without it a summary is printed"},
        {"token-embeddings", "", "also write last_hidden_state, input_ids, attention_mask"},
    },
    R"(pooling modes:
  cls          last_hidden_state[:, 0]
  pooler       pooler_output (dense + tanh on [CLS]); needs pooler weights
  mean         mean over all real tokens (attention_mask = 1)
  mean-no-cls  mean over real tokens except [CLS] (images: over the patches) — what the lab means
  lab          the lab's literal formula sum(h[:, 1:], 1) / (mask.sum(1) - 1), which also sums
               the hidden states of padding positions; use it to reproduce the lab's figures
               (for images, which have no padding, it equals mean-no-cls)
All texts form one padded batch, as in the lab (tokenizer(texts, padding=True)); large batches are
split internally without changing any number. Images are decoded as Pillow does (no EXIF rotation)
and preprocessed exactly as the folder's Hugging Face image processor.

outputs: .safetensors holds `embeddings` [N, D] F32 (+ with --token-embeddings: `last_hidden_state`
[N, L, D], and `input_ids`, `attention_mask` [N, L] I64 for texts or `pixel_values` [N, 3, H, W]
for images); .npy holds the embeddings; .json holds the inputs' names, the embeddings (and token
outputs). Files are written atomically.

example:
  mmx embed --model tests/data/models/bert-tiny --text "Cat with paint" --text "rock statue" \
            --pooling lab --output lab.safetensors
  mmx embed --model tests/data/models/vit-tiny --image tests/data/images/chelsea.png --image photos/
)",
};

std::vector<std::string> collect_texts(const Args& args) {
  std::vector<std::string> texts = args.all("text");
  for (size_t i = 0; i < texts.size(); ++i)
    if (find_invalid_utf8(texts[i]) != std::string::npos) usage_error("--text number ", i + 1, " is not valid UTF-8");
  if (auto file = args.get("texts-file")) {
    const auto lines = read_text_lines(*file);
    texts.insert(texts.end(), lines.begin(), lines.end());
  }
  if (texts.empty()) usage_error("no texts: give --text T (repeatable) or --texts-file FILE with one text per line");
  return texts;
}

std::vector<std::string> collect_image_paths(const Args& args) {
  const std::vector<std::string> paths = expand_image_paths(args.all("image"));
  if (paths.empty()) usage_error("no images: give --image PATH (repeatable; a file, a folder or a quoted pattern)");
  return paths;
}

const Option& skip_bad_images_option() {
  static const Option option{"skip-bad-images", "", "warn about undecodable images and go on without them"};
  return option;
}

std::vector<Image> load_images(std::vector<std::string>& paths, bool skip_bad) {
  std::vector<Image> images;
  std::vector<std::string> kept;
  for (const auto& p : paths) {
    try {
      images.push_back(load_image(p));
      kept.push_back(p);
    } catch (const Error& e) {
      if (!skip_bad) throw;
      std::fprintf(stderr, "mmx: warning: skipping %s\n", e.what());
    }
  }
  if (images.empty()) fail("none of the ", paths.size(), " images could be decoded");
  paths = std::move(kept);
  return images;
}

std::string extension_of(const std::string& path) {
  const size_t dot = path.find_last_of('.'), slash = path.find_last_of('/');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return "";
  return path.substr(dot);
}

namespace {

nlohmann::json tensor_to_json(const Tensor& t) {
  nlohmann::json rows = nlohmann::json::array();
  const int64_t inner = t.dim(-1), outer = t.numel() / std::max<int64_t>(inner, 1);
  const Shape lead(t.shape().begin(), t.shape().end() - 1);
  for (int64_t r = 0; r < outer; ++r) {
    nlohmann::json row = nlohmann::json::array();
    for (int64_t i = 0; i < inner; ++i) {
      if (t.dtype() == DType::I64) row.push_back(t.data<int64_t>()[r * inner + i]);
      else row.push_back(t.data<float>()[r * inner + i]);
    }
    rows.push_back(std::move(row));
  }
  if (t.ndim() == 3) {  // [N, L, D] → nested per text
    nlohmann::json nested = nlohmann::json::array();
    for (int64_t n = 0; n < t.dim(0); ++n) {
      nlohmann::json block = nlohmann::json::array();
      for (int64_t l = 0; l < t.dim(1); ++l) block.push_back(std::move(rows[n * t.dim(1) + l]));
      nested.push_back(std::move(block));
    }
    return nested;
  }
  return rows;
}

}  // namespace

int run_embed(const Args& args) {
  const auto model = args.get("model");
  if (!model) usage_error("--model DIR is required");
  EmbedOptions options;
  if (auto p = args.get("pooling")) options.pooling = pooling_from_name(*p);
  options.normalize = args.has("normalize");
  options.token_embeddings = args.has("token-embeddings");
  options.max_length = args.get_int("max-length", 2);
  const auto output = args.get("output");
  std::string ext;
  if (output) {
    ext = extension_of(*output);
    if (ext != ".safetensors" && ext != ".npy" && ext != ".json")
      usage_error("--output '", *output, "': unknown extension (use .safetensors, .npy or .json)");
    if (ext == ".npy" && options.token_embeddings)
      usage_error("--token-embeddings needs several arrays: write .safetensors or .json, not .npy");
    check_output_path(*output);  // refuse a bad path before any work
  }
  const bool images = args.has("image");
  if (images && (args.has("text") || args.has("texts-file")))
    usage_error("give texts or images, not both: a BERT or ViT folder embeds one modality");
  std::vector<std::string> inputs = images ? collect_image_paths(args) : collect_texts(args);  // texts or image paths

  EmbedResult result;
  std::string description;
  if (images) {
    const auto embedder = ImageEmbedder::load(*model);
    description = embedder->description();
    const std::vector<Image> decoded = load_images(inputs, args.has("skip-bad-images"));
    result = embedder->embed(decoded, options);
  } else {
    const auto embedder = TextEmbedder::load(*model);
    description = embedder->description();
    result = embedder->embed(inputs, options);
  }

  if (!output) {
    const int64_t n = result.embeddings.dim(0), d = result.embeddings.dim(1);
    std::printf("model: %s (%s)\npooling: %s%s; ", model->c_str(), description.c_str(), pooling_name(options.pooling),
                options.normalize ? ", L2-normalised" : "");
    if (images) std::printf("%lld images\n", static_cast<long long>(n));
    else std::printf("%lld texts, one batch padded to %lld tokens\n", static_cast<long long>(n), static_cast<long long>(result.input_ids.dim(1)));
    std::printf("embeddings [%lld, %lld] F32\n", static_cast<long long>(n), static_cast<long long>(d));
    for (int64_t r = 0; r < n; ++r) {
      const float* e = result.embeddings.data<float>() + r * d;
      double norm = 0;
      for (int64_t i = 0; i < d; ++i) norm += double(e[i]) * e[i];
      std::string preview;
      for (int64_t i = 0; i < std::min<int64_t>(d, 4); ++i) preview += (i ? ", " : "") + std::to_string(e[i]);
      std::string label = inputs[r].size() > 40 ? "..." + inputs[r].substr(inputs[r].size() - 37) : inputs[r];
      std::printf("  %3lld  %-42s [%s%s]  |e| = %.4f\n", static_cast<long long>(r),
                  ("\"" + label + "\"").c_str(), preview.c_str(), d > 4 ? ", ..." : "", std::sqrt(norm));
    }
    return 0;
  }
  if (ext == ".safetensors") {
    std::vector<std::pair<std::string, Tensor>> tensors = {{"embeddings", result.embeddings}};
    if (options.token_embeddings) {
      tensors.emplace_back("last_hidden_state", result.last_hidden_state);
      if (images) {
        tensors.emplace_back("pixel_values", result.pixel_values);
      } else {
        tensors.emplace_back("input_ids", result.input_ids);
        tensors.emplace_back("attention_mask", result.attention_mask);
      }
    }
    write_safetensors(*output, tensors,
                      {{"model", *model}, {"pooling", pooling_name(options.pooling)},
                       {"normalize", options.normalize ? "true" : "false"},
                       {images ? "images" : "texts", nlohmann::json(inputs).dump()}});
  } else if (ext == ".npy") {
    write_npy(*output, result.embeddings);
  } else {
    nlohmann::ordered_json j;
    j["model"] = *model;
    j["pooling"] = pooling_name(options.pooling);
    j["normalize"] = options.normalize;
    j[images ? "images" : "texts"] = inputs;
    j["embeddings"] = tensor_to_json(result.embeddings);
    if (options.token_embeddings && !images) {
      j["input_ids"] = tensor_to_json(result.input_ids);
      j["attention_mask"] = tensor_to_json(result.attention_mask);
    }
    if (options.token_embeddings) j["last_hidden_state"] = tensor_to_json(result.last_hidden_state);
    write_file_atomically(*output, j.dump() + "\n");
  }
  std::fprintf(stderr, "wrote %s: embeddings [%lld, %lld]\n", output->c_str(),
               static_cast<long long>(result.embeddings.dim(0)), static_cast<long long>(result.embeddings.dim(1)));
  return 0;
}

}  // namespace mmx::cli
