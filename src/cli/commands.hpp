#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/args.hpp"
#include "mmx/image.hpp"
#include "mmx/plot.hpp"

namespace mmx::cli {

struct Subcommand {
  const Command* command;
  int (*run)(const Args& args);
};

extern const Command kEmbedCommand, kTokenizeCommand, kBenchCommand, kPreprocessCommand, kClassifyCommand,
    kSimilarityCommand, kLabCommand, kGenerateCommand, kDownloadCommand;
int run_download(const Args& args);
int run_generate(const Args& args);
int run_similarity(const Args& args);
int run_lab(const Args& args);
int run_embed(const Args& args);
int run_preprocess(const Args& args);
int run_classify(const Args& args);
int run_tokenize(const Args& args);
int run_bench(const Args& args);

// Texts from --text (in order) then --texts-file lines; an empty result is a usage error.
std::vector<std::string> collect_texts(const Args& args);
// --image arguments expanded (folders, patterns) in a stable sorted order; none is a usage error.
std::vector<std::string> collect_image_paths(const Args& args);
// Decodes every path; a bad file is an error naming it, or, with --skip-bad-images, a warning that
// drops it from `paths` (the other images' results do not change: each is processed on its own).
std::vector<Image> load_images(std::vector<std::string>& paths, bool skip_bad);
const Option& skip_bad_images_option();  // --skip-bad-images
std::string extension_of(const std::string& path);  // ".safetensors", "" when none
// A tensor as nested JSON lists: [N, D] → rows; [N, L, D] → per row, its L lists (I64 or F32).
nlohmann::json tensor_to_json(const Tensor& t);
// JSON text; bytes that are not UTF-8 (file names can hold them) become U+FFFD instead of an error.
std::string json_text(const nlohmann::ordered_json& value, int indent = -1);

std::string base_name(const std::string& path);  // the part after the last '/'
// Short labels for image files: the name without folder and extension ("astronaut"), or more of the
// path where that would leave two images with one label.
std::vector<std::string> image_labels(const std::vector<std::string>& paths);
// --<option> WIDTHxHEIGHT in inches; --dpi (default 100); a figure path's extension and folder.
std::optional<std::pair<double, double>> plot_size(const Args& args, const std::string& option);
double plot_dpi(const Args& args);
void check_plot_path(const std::string& path, const std::string& option);

}  // namespace mmx::cli
