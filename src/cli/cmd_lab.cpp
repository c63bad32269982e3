// mmx lab: the lab's study in one command. BERT × ViT embeddings (trained apart) and CLIP's (trained
// together) of the same images and texts, as the lab's similarity matrices, its two figures, and one
// line per figure saying how many captions find their own image.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/plot_args.hpp"
#include "mmx/error.hpp"
#include "mmx/files.hpp"
#include "lab/lab.hpp"
#include "mmx/runtime.hpp"

namespace mmx::cli {

const Command kLabCommand{
    "lab",
    "mmx lab (--image PATH)... [--caption T]... [--dialogue T]... [--text-model MODEL] [--image-model MODEL]\n"
    "               [--clip-model MODEL] [--pooling-text lab|mean-no-cls] --out DIR",
    "The whole lab: unaligned BERT × ViT versus CLIP, as matrices, figures and a diagonal check.",
    with_options({
        {"image", "PATH", "an image (file, folder or quoted pattern); at least two. Caption i describes image i", true},
        text_option("caption", "T", "a caption (default: four that describe tests/data/images' astronaut, chelsea, coffee, rocket)", true),
        {"captions-file", "FILE", "captions from a UTF-8 file, one per line"},
        text_option("dialogue", "T", "a dialogue text (default: the lab's four: Cats don't usually, like water, ...)", true),
        {"lab-texts", "", "the lab's own captions (Cat with paint, rock statue, frogs on leaf, jellyfish), as its figures have them"},
        {"dialogue-file", "FILE", "dialogue texts from a UTF-8 file, one per line"},
        texts_limit_option(),
        {"text-model", "MODEL", "the text encoder, a folder or Hub id (default: bert-base-uncased)"},
        {"image-model", "MODEL", "the image encoder (default: google/vit-base-patch16-224)"},
        {"clip-model", "MODEL", "the model of texts and images in one space (default: openai/clip-vit-base-patch32)"},
        {"pooling-text", "MODE", "lab (default: the lab's formula, padding summed) | mean-no-cls (the masked mean)",
         false, {"lab", "mean-no-cls"}},
        {"out", "DIR", "where lab_bert_vit.png, lab_clip.png and matrices.json go (created if missing)"},
        {"format", "EXT", "png (default) | svg | pdf: the figures' format", false, {"png", "svg", "pdf"}},
        {"dpi", "N", "pixels per inch of the PNG figures (default 100)"},
        skip_bad_images_option(),
    }, heatmap_options(false)),
    R"(What it does, as the lab does it:
  1. captions + dialogue in one padded batch through the text model, pooled with the lab's formula
     sum(h[:, 1:]) / (mask.sum(1) − 1); images through the image model, the mean of the patch tokens;
  2. image×image, captions×image, dialogue×captions, dialogue×image = (A @ B.T).softmax(dim=0);
  3. the same texts and images through CLIP (get_text_features, get_image_features):
     captions×image and dialogue×image;
  4. writes DIR/lab_bert_vit.png (2×2), DIR/lab_clip.png (1×2) and DIR/matrices.json (every matrix as
     a list of rows, rows being the first-named set; plus the images, captions and dialogue);
  5. prints, per figure, how many captions have their own image (caption i ↔ image i) as the
     highest entry of their row of captions×image, as drawn.
The figures label rows with the rows' set and columns with the columns' (the lab's own plots swap
the two axis labels). Model arguments are folders as written by save_pretrained, or Hub ids. The three
models are checked from their configs before any work; lab_bert_vit and matrices.json are written as
soon as the first half is done, so a failure of the CLIP half keeps them (and says so).

example (the fixture models of this repository, offline):
  mmx lab --image tests/data/images/astronaut.png --image tests/data/images/chelsea.png \
          --image tests/data/images/coffee.png --image tests/data/images/rocket.jpg \
          --text-model tests/data/models/bert-tiny --image-model tests/data/models/vit-tiny \
          --clip-model tests/data/models/clip-tiny --out lab-out
)",
};

namespace {

std::vector<std::string> texts_of(const Args& args, const std::string& option, const std::string& file_option,
                                  const std::vector<std::string>& defaults) {
  if (!args.has(option) && !args.has(file_option)) return defaults;
  std::vector<std::string> texts = args.all(option);
  if (auto f = args.get(file_option)) {
    const auto lines = read_text_lines(*f, args);
    texts.insert(texts.end(), lines.begin(), lines.end());
  }
  if (texts.empty()) usage_error("no ", option, " texts: --", file_option, " is empty");
  return texts;
}

// Checked before any work, created only when there is something to write.
void check_out_dir(const std::string& dir) {
  struct stat st;
  if (::stat(dir.c_str(), &st) == 0 && !S_ISDIR(st.st_mode)) fail("--out '", dir, "' is a file, not a folder");
  if (dir_exists(dir)) {
    if (::access(dir.c_str(), W_OK | X_OK) != 0) fail("--out '", dir, "': not writable: ", std::strerror(errno));
    return;
  }
  // Missing folders are created (with their missing parents, as mkdir -p) once the work is done: the
  // nearest existing ancestor must be a writable folder.
  std::string ancestor = dir;
  while (::stat(ancestor.c_str(), &st) != 0) {
    while (ancestor.size() > 1 && ancestor.back() == '/') ancestor.pop_back();
    const size_t slash = ancestor.find_last_of('/');
    ancestor = slash == std::string::npos ? "." : slash == 0 ? "/" : ancestor.substr(0, slash);
  }
  if (!S_ISDIR(st.st_mode)) fail("--out '", dir, "': cannot create the folder: '", ancestor, "' is a file");
  if (::access(ancestor.c_str(), W_OK | X_OK) != 0)
    fail("--out '", dir, "': cannot create the folder in '", ancestor, "': ", std::strerror(errno));
}

void create_out_dir(const std::string& dir) {
  std::error_code ec;
  if (!dir_exists(dir) && !std::filesystem::create_directories(dir, ec) && !dir_exists(dir))
    fail("--out '", dir, "': cannot create the folder: ", ec.message());
}

std::string diagonal_line(const std::string& what, const DiagonalMatch& m, const std::vector<std::string>& captions,
                          const std::vector<std::string>& images) {
  std::string line = what + ": " + std::to_string(m.matched) + " of " + std::to_string(m.pairs) +
                     " captions rank their own image first —";
  for (int i = 0; i < m.pairs; ++i)
    line += std::string(i ? "," : "") + " " + captions[size_t(i)] + " → " + images[size_t(m.best[size_t(i)])] +
            (m.best[size_t(i)] == i ? " ✓" : " ✗");
  return line;
}

void progress(const std::string& step) {  // stderr, so stdout keeps only the results
  if (log_level() >= LogLevel::Warn) std::fprintf(stderr, "mmx lab: %s\n", step.c_str());
}

}  // namespace

int run_lab(const Args& args) {
  const auto out = args.get("out");
  if (!out) usage_error("give --out DIR for the figures and matrices.json");
  const std::string format = args.get("format").value_or("png");
  if (format != "png" && format != "svg" && format != "pdf") usage_error("--format '", format, "': choose png, svg or pdf");
  const double dpi = plot_dpi(args);
  auto styled = [&args](plot::Figure figure) {  // --cmap, --fmt, --vmin, --vmax on every panel
    for (auto& panel : figure.panels) apply_heatmap_options(args, panel);
    return figure;
  };
  {
    plot::Heatmap probe;  // checked before any work
    apply_heatmap_options(args, probe);
  }
  std::string pooling_text = args.get("pooling-text").value_or("lab");
  if (pooling_text != "lab" && pooling_text != "mean-no-cls")
    usage_error("--pooling-text '", pooling_text, "': choose lab (the lab's formula) or mean-no-cls");

  LabInputs in;
  in.placement = placement_of(args);
  in.captions = texts_of(args, "caption", "captions-file", args.has("lab-texts") ? lab_original_captions() : lab_default_captions());
  if (args.has("lab-texts") && (args.has("caption") || args.has("captions-file")))
    usage_error("--lab-texts gives the lab's own captions; --caption gives yours: use one");
  in.dialogue = texts_of(args, "dialogue", "dialogue-file", lab_default_dialogue());
  in.text_model = args.get("text-model").value_or("bert-base-uncased");
  in.image_model = args.get("image-model").value_or("google/vit-base-patch16-224");
  in.clip_model = args.get("clip-model").value_or("openai/clip-vit-base-patch32");
  in.text_pooling = pooling_from_name(pooling_text);
  std::vector<std::string> paths = collect_image_paths(args);
  if (paths.size() < 2)
    usage_error("the lab compares images with each other: give at least two (--image), got ", paths.size());
  check_out_dir(*out);
  in.images = load_images(paths, args.has("skip-bad-images"));
  if (in.images.size() < 2) usage_error("fewer than two images were readable");
  in.image_labels = image_labels(paths);

  check_lab_models(in);  // every model fits its part, before any weight is read
  const std::string bert_vit_path = join_path(*out, "lab_bert_vit." + format);
  const std::string clip_path = join_path(*out, "lab_clip." + format);
  const std::string json_path = join_path(*out, "matrices.json");
  // matrices.json holds what has been computed so far; it is written again when the CLIP half is done.
  auto write_matrices = [&](const LabResult& r, bool with_clip) {
    nlohmann::ordered_json j;
    j["image_image"] = tensor_to_json(r.image_image);
    j["captions_image"] = tensor_to_json(r.captions_image);
    j["dialogue_captions"] = tensor_to_json(r.dialogue_captions);
    j["dialogue_image"] = tensor_to_json(r.dialogue_image);
    if (with_clip) {
      j["clip_captions_image"] = tensor_to_json(r.clip_captions_image);
      j["clip_dialogue_image"] = tensor_to_json(r.clip_dialogue_image);
    }
    j["images"] = paths;
    j["captions"] = in.captions;
    j["dialogue"] = in.dialogue;
    j["text_pooling"] = pooling_text;
    j["softmax"] = "dim0";
    write_file_atomically(json_path, json_text(j, 1) + "\n");
  };
  LabResult r;
  run_lab_bert_vit(in, r, progress);
  const plot::Scene bert_vit = plot::layout_figure(styled(lab_bert_vit_figure(in, r, dpi)));  // laid out before any file
  create_out_dir(*out);
  plot::save_scene(bert_vit, bert_vit_path);
  write_matrices(r, false);
  progress("wrote " + bert_vit_path + " and " + json_path + " (BERT × ViT)");
  const DiagonalMatch bert_vit_match = diagonal_match(r.captions_image);
  std::printf("%s\n", diagonal_line("BERT × ViT (" + bert_vit_path + ")", bert_vit_match, in.captions, in.image_labels).c_str());
  std::fflush(stdout);
  try {
    run_lab_clip(in, r, progress);
    plot::save_scene(plot::layout_figure(styled(lab_clip_figure(in, r, dpi))), clip_path);
    write_matrices(r, true);
  } catch (const Error& e) {
    throw Error(e.kind(), str(e.what(), "\n(kept ", bert_vit_path, " and ", json_path, " of the BERT × ViT half)"), e.hint());
  }

  std::printf("%s\n", diagonal_line("CLIP (" + clip_path + ")", diagonal_match(r.clip_captions_image),
                                    in.captions, in.image_labels).c_str());
  if (in.captions.size() != in.images.size())
    std::printf("(%zu captions and %zu images: the diagonal pairs caption i with image i for the first %d)\n",
                in.captions.size(), in.images.size(), bert_vit_match.pairs);
  progress("wrote " + bert_vit_path + ", " + clip_path + " and " + json_path);
  return 0;
}

}  // namespace mmx::cli
