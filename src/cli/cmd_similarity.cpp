// mmx similarity: a rows × columns matrix between two sets of texts or images, each embedded by its
// encoder (one CLIP folder, or the lab's unaligned BERT and ViT pair), with the lab's softmax.
#include <cstdio>
#include <tuple>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/plot_args.hpp"
#include "mmx/embed.hpp"
#include "mmx/files.hpp"
#include "lab/lab.hpp"
#include "mmx/safetensors.hpp"
#include "mmx/similarity.hpp"

namespace mmx::cli {

const Command kSimilarityCommand{
    "similarity",
    "mmx similarity (--model MODEL | --text-model MODEL --image-model MODEL) ROWS COLS [--score S] [--softmax D]\n"
    "                      [--json] [--output FILE.safetensors] [--plot FILE.png|svg|pdf]",
    "Score every row against every column: texts or images, each embedded by its encoder.",
    with_options({
        {"model", "MODEL", "one model (folder or Hub id) for both sets (CLIP; or BERT for texts × texts, ViT for images × images)"},
        {"text-model", "MODEL", "the encoder of texts (the lab: a BERT folder)"},
        {"image-model", "MODEL", "the encoder of images (the lab: a ViT folder)"},
        text_option("text", "T", "shorthand: a text of the rows", true),
        {"texts-file", "FILE", "shorthand: rows from a UTF-8 file, one text per line"},
        {"image", "PATH", "shorthand: an image of the columns (file, folder or quoted pattern)", true},
        text_option("row-text", "T", "a text of the rows", true),
        {"row-texts-file", "FILE", "rows from a UTF-8 file, one text per line"},
        {"row-image", "PATH", "an image of the rows", true},
        text_option("col-text", "T", "a text of the columns", true),
        {"col-texts-file", "FILE", "columns from a UTF-8 file, one text per line"},
        texts_limit_option(),
        {"col-image", "PATH", "an image of the columns", true},
        {"score", "S", "cosine (default; a sentence-transformers folder: its similarity_fn_name) | dot (the lab) | clip-logits (cosine × exp(logit_scale))",
         false, {"cosine", "dot", "clip-logits"}},
        {"softmax", "D", "none (default) | dim0 (the lab's .softmax(dim=0): each column sums to 1) | dim1",
         false, {"none", "dim0", "dim1"}},
        {"lab", "", "the lab's matrices: --score dot --softmax dim0 (explicit --score/--softmax still win)"},
        {"text-pooling", "MODE", "pooling of the text encoder (see mmx embed --help; the lab: lab or mean-no-cls)",
         false, pooling_names()},
        {"row-prompt-name", "NAME", "a sentence-transformers folder's prompt for the row texts (e5: query)"},
        {"col-prompt-name", "NAME", "... for the column texts (e5: passage); a search compares the two"},
        {"image-pooling", "MODE", "pooling of the image encoder (default: mean-no-cls for ViT, projection for CLIP)",
         false, pooling_names()},
        {"json", "", "print {\"rows\", \"cols\", \"matrix\", \"score\", \"softmax\"} instead of a table"},
        {"output", "FILE", "also write matrix, row_embeddings and col_embeddings (.safetensors)"},
        {"plot", "FILE", "also draw the matrix as an annotated coolwarm heatmap (.png, .svg or .pdf)"},
        {"plot-size", "WxH", "the plot's size in inches (default: 6x6 for a 4×4 matrix, larger for larger ones)"},
        {"dpi", "N", "pixels per inch of a PNG plot (default 100)"},
        text_option("title", "T", "the plot's title (default: Similarity between Text and Image Embeddings)"),
        skip_bad_images_option(),
    }, heatmap_options(true)),
    R"(Rows and columns: --text gives rows and --image columns (texts × images, as the lab's matrices);
with only --text (or only --image) the set is compared with itself. --row-* / --col-* choose freely.
--plot draws rows down and columns across, each labelled with its own set (images by file name).
Texts of rows and columns that share an encoder are embedded in one padded batch, as the lab does.

By default each pair is scored by the cosine of its embeddings, without a softmax (what a search or a
deduplication wants); --lab gives the lab's matrices: dot products, then a softmax down each column.

examples:
  mmx similarity --model tests/data/models/clip-tiny --text "A tabby cat" --text "A rocket on the launch pad" \
                 --image tests/data/images/chelsea.png --image tests/data/images/rocket.jpg
  mmx similarity --model tests/data/models/clip-tiny --lab --text "A tabby cat" --text "A cup of espresso" \
                 --image 'tests/data/images/c*.png' --plot similarity.png
  mmx similarity --text-model tests/data/models/bert-tiny --image-model tests/data/models/vit-tiny --lab \
                 --text-pooling lab --text "A tabby cat" --image tests/data/images/chelsea.png --image tests/data/images/coffee.png
)",
};

namespace {

struct Set {
  bool images = false;
  std::vector<std::string> names;
  Tensor embeddings;
};

// The set of --<prefix>text / --<prefix>texts-file / --<prefix>image (images only when `with_images`).
Set gather(const Args& args, const std::string& prefix, bool rows, bool with_images = true) {
  Set s;
  const std::string text = prefix + "text", file = prefix + "texts-file", image = prefix + "image";
  if (args.has(text) || args.has(file)) {
    s.names = args.all(text);
    if (auto f = args.get(file)) {
      const auto lines = read_text_lines(*f, args);
      s.names.insert(s.names.end(), lines.begin(), lines.end());
    }
  }
  if (with_images && args.has(image)) {
    if (!s.names.empty()) usage_error("the ", rows ? "rows" : "columns", " mix texts and images: give one kind per set");
    s.images = true;
    s.names = expand_image_paths(args.all(image));
  }
  return s;
}

std::string short_label(const Set& s, size_t i, size_t width) {
  std::string label = s.names[i];
  if (s.images) label = base_name(label);
  if (label.size() > width) label = label.substr(0, width - 3) + "...";
  return label;
}

}  // namespace

int run_similarity(const Args& args) {
  const auto model = args.get("model");
  const auto text_model = args.get("text-model").value_or(model.value_or(""));
  const auto image_model = args.get("image-model").value_or(model.value_or(""));
  if (text_model.empty() && image_model.empty()) usage_error("give --model MODEL, or --text-model and --image-model");
  const bool lab = args.has("lab");
  // The default: cosine (the lab: dot); a sentence-transformers folder's own similarity_fn_name.
  std::string score_text = args.get("score").value_or(lab ? "dot" : "cosine");
  if (!args.has("score") && !lab && !text_model.empty()) {
    const std::string st = inspect_model(text_model).sentence_transformers_similarity;
    if (!st.empty() && st != "cosine" && st != "dot")
      usage_error(text_model, ": similarity_fn_name '", st, "' is not implemented; give --score cosine or dot");
    if (!st.empty()) score_text = st;
  }
  const Score score = score_from_name(score_text);
  const SoftmaxDim softmax = softmax_dim_from_name(args.get("softmax").value_or(lab ? "dim0" : "none"));
  const auto output = args.get("output");
  if (output) {
    if (extension_of(*output) != ".safetensors") usage_error("--output '", *output, "': use .safetensors");
    check_output_path(*output);
  }
  const auto plot_path = args.get("plot");
  if (plot_path) check_plot_path(*plot_path, "plot");
  const auto size = plot_size(args, "plot-size");
  const double dpi = plot_dpi(args);
  {
    plot::Heatmap style;  // --cmap, --fmt, --vmin, --vmax checked before any work
    apply_heatmap_options(args, style);
  }
  // Sets: explicit --row-* / --col-*, else --text as rows and --image as columns, else one set twice.
  Set rows = gather(args, "row-", true), cols = gather(args, "col-", false);
  const bool explicit_rows = !rows.names.empty();
  const Set texts = gather(args, "", true, /*with_images=*/false);
  Set images;
  if (args.has("image")) {
    images.images = true;
    images.names = expand_image_paths(args.all("image"));
  }
  if (!explicit_rows) rows = !texts.names.empty() ? texts : images;
  if (cols.names.empty()) {
    if (!images.names.empty() && (explicit_rows || !texts.names.empty())) cols = images;
    else if (!texts.names.empty() && explicit_rows) cols = texts;
    else cols = rows;
  }
  if (rows.names.empty()) usage_error("no rows: give texts (--text, --row-text) or images (--image, --row-image)");

  EmbedOptions text_options, image_options;
  if (auto p = args.get("text-pooling")) text_options.pooling = pooling_from_name(*p);
  EmbedOptions row_text_options = text_options, col_text_options = text_options;  // asymmetric prompts (e5, bge)
  row_text_options.prompt_name = args.get("row-prompt-name");
  col_text_options.prompt_name = args.get("col-prompt-name");
  if (rows.images && row_text_options.prompt_name) usage_error("--row-prompt-name applies to texts; the rows are images");
  if (cols.images && col_text_options.prompt_name) usage_error("--col-prompt-name applies to texts; the columns are images");
  if (auto p = args.get("image-pooling")) image_options.pooling = pooling_from_name(*p);
  std::optional<float> logit_scale;
  const Placement placement = placement_of(args);
  // Loaded once and kept: with one model for both (CLIP), the second embedder gets the first's model.
  std::unique_ptr<TextEmbedder> text_embedder;
  std::unique_ptr<ImageEmbedder> image_embedder;
  auto embed_texts = [&](const std::vector<std::string>& names, const EmbedOptions& options) {
    if (text_model.empty()) usage_error("texts need --text-model (or --model)");
    if (!text_embedder) text_embedder = TextEmbedder::load(text_model, placement);
    if (!logit_scale) logit_scale = text_embedder->logit_scale();
    return text_embedder->embed(names, options).embeddings;
  };
  auto embed_images = [&](Set& s) {
    if (image_model.empty()) usage_error("images need --image-model (or --model)");
    if (!image_embedder) image_embedder = ImageEmbedder::load(image_model, placement);
    if (!logit_scale) logit_scale = image_embedder->logit_scale();
    s.embeddings = image_embedder->embed(load_images(s.names, args.has("skip-bad-images")), image_options).embeddings;
  };
  if (!rows.images && !cols.images && row_text_options.prompt_name == col_text_options.prompt_name) {
    // one padded batch for both text sets, as the lab embeds its texts
    std::vector<std::string> all = rows.names;
    all.insert(all.end(), cols.names.begin(), cols.names.end());
    const Tensor e = embed_texts(all, row_text_options);
    rows.embeddings = e.narrow0(0, static_cast<int64_t>(rows.names.size())).clone();
    cols.embeddings = e.narrow0(static_cast<int64_t>(rows.names.size()), static_cast<int64_t>(cols.names.size())).clone();
  } else {
    for (Set* s : {&rows, &cols}) {
      if (s->images) embed_images(*s);
      else s->embeddings = embed_texts(s->names, s == &rows ? row_text_options : col_text_options);
    }
  }
  Tensor matrix = similarity_matrix(rows.embeddings, cols.embeddings, score, logit_scale);
  softmax_(matrix, softmax);

  StagedOutputs outputs;  // the matrix file and the figure: both, or neither
  if (output)
    write_safetensors(outputs.temporary_for(*output),
                      {{"matrix", matrix}, {"row_embeddings", rows.embeddings}, {"col_embeddings", cols.embeddings}},
                      {{"rows", json_text(rows.names)}, {"cols", json_text(cols.names)},
                       {"score", score_name(score)}, {"softmax", softmax_dim_name(softmax)}});
  if (plot_path) {
    auto labels = [](const Set& s) { return s.images ? image_labels(s.names) : s.names; };
    plot::Figure figure;
    figure.panels.push_back(similarity_heatmap(matrix, labels(rows), labels(cols), rows.images ? "Image" : "Text",
                                               cols.images ? "Image" : "Text"));
    if (auto t = args.get("title")) figure.panels[0].title = *t;
    apply_heatmap_options(args, figure.panels[0]);
    std::tie(figure.width_in, figure.height_in) =
        size.value_or(plot::default_panel_size(static_cast<int>(matrix.dim(0)), static_cast<int>(matrix.dim(1))));
    figure.dpi = dpi;
    plot::save_figure(figure, outputs.temporary_for(*plot_path));
  }
  outputs.commit();
  if (plot_path && chatty()) std::fprintf(stderr, "wrote %s\n", plot_path->c_str());
  const int64_t r = matrix.dim(0), c = matrix.dim(1);
  if (args.has("json")) {
    nlohmann::ordered_json j;
    j["rows"] = rows.names;
    j["cols"] = cols.names;
    j["matrix"] = tensor_to_json(matrix);
    j["score"] = score_name(score);
    j["softmax"] = softmax_dim_name(softmax);
    std::puts(json_text(j).c_str());
    return 0;
  }
  std::printf("%s, softmax %s: rows %s × columns %s\n%-26s", score_name(score), softmax_dim_name(softmax),
              rows.images ? "images" : "texts", cols.images ? "images" : "texts", "");
  for (int64_t j = 0; j < c; ++j) std::printf(" %12s", short_label(cols, size_t(j), 12).c_str());
  std::printf("\n");
  for (int64_t i = 0; i < r; ++i) {
    std::printf("%-26s", short_label(rows, size_t(i), 26).c_str());
    for (int64_t j = 0; j < c; ++j) std::printf(" %12.4g", matrix.data<float>()[i * c + j]);
    std::printf("\n");
  }
  return 0;
}

}  // namespace mmx::cli
