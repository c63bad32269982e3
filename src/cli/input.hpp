// The command line's shared input and output helpers (src/cli/input.cpp): texts from --text and
// --texts-file, --image arguments expanded and decoded, tensors written as JSON.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/args.hpp"
#include "mmx/image.hpp"
#include "mmx/tensor.hpp"

namespace mmx::cli {

// A UTF-8 text file as lines (a leading BOM, "\r\n" endings and empty lines dropped); invalid UTF-8
// is an error naming the line and byte. "-" reads standard input.
// A UTF-8 file (or - for standard input) of at most --texts-limit bytes (default 64 MiB), one text per line.
std::vector<std::string> read_text_lines(const std::string& path, const Args& args);
const Option& texts_limit_option();  // --texts-limit
// Texts from --text (in order) then --texts-file lines; an empty result is a usage error.
std::vector<std::string> collect_texts(const Args& args);

// Image arguments → files: a folder gives its image files (has_image_extension; sorted), a pattern with * ? [ is
// expanded (sorted), anything else is taken as a path. No match is an error.
std::vector<std::string> expand_image_paths(const std::vector<std::string>& args);
// --image arguments expanded (folders, patterns) in a stable sorted order; none is a usage error.
std::vector<std::string> collect_image_paths(const Args& args);
// Decodes every path; a bad file is an error naming it, or, with --skip-bad-images, a warning that
// drops it from `paths` (the other images' results do not change: each is processed on its own).
std::vector<Image> load_images(std::vector<std::string>& paths, bool skip_bad);
// The same for a part of a longer list: none decoded is no error here (the caller counts).
std::vector<Image> decode_images(std::vector<std::string>& paths, bool skip_bad);
const Option& skip_bad_images_option();  // --skip-bad-images

// Whether status lines (what was written, progress) go to stderr: not with --quiet.
bool chatty();
// A line on stderr with --verbose (or MMX_LOG=info): what the command resolved and chose, and why.
void verbose_line(const std::string& message);

std::string extension_of(const std::string& path);  // ".safetensors", "" when none
// A tensor as nested JSON lists: [N, D] → rows; [N, L, D] → per row, its L lists (I64 or F32).
nlohmann::json tensor_to_json(const Tensor& t);
// JSON text; bytes that are not UTF-8 (file names can hold them) become U+FFFD instead of an error.
std::string json_text(const nlohmann::ordered_json& value, int indent = -1);

}  // namespace mmx::cli
