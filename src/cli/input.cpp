// The command line's shared input and output helpers: texts from flags and files, image arguments
// expanded and decoded, tensors as JSON.
#include "cli/input.hpp"

#include <glob.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "mmx/error.hpp"
#include "mmx/files.hpp"
#include "mmx/runtime.hpp"

namespace mmx::cli {

const Option& texts_limit_option() {
  static const Option option{"texts-limit", "BYTES", "the most bytes a texts file or standard input may hold (default 64 MiB)"};
  return option;
}

std::vector<std::string> read_text_lines(const std::string& path, const Args& args) {
  const int64_t limit = args.get_int("texts-limit", 1).value_or(int64_t(64) << 20);
  std::string text;
  if (path == "-") {  // standard input, read in pieces up to the limit (it may be endless: < /dev/zero)
    char buf[1 << 16];
    while (std::cin.read(buf, sizeof buf) || std::cin.gcount() > 0) {
      text.append(buf, size_t(std::cin.gcount()));
      if (int64_t(text.size()) > limit)
        fail("standard input holds more than ", limit, " bytes of texts; raise --texts-limit BYTES");
    }
  } else {
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && int64_t(st.st_size) > limit)
      fail(path, ": ", st.st_size, " bytes of texts, more than --texts-limit ", limit);
    text = read_file(path);  // refuses devices, FIFOs and sockets
  }
  if (text.compare(0, 3, "\xEF\xBB\xBF") == 0) text.erase(0, 3);
  std::vector<std::string> lines;
  size_t start = 0, line_no = 1;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (const size_t bad = find_invalid_utf8(line); bad != std::string::npos)
      fail(path, ": line ", line_no, " is not valid UTF-8 (byte ", bad + 1, " of the line)");
    if (!line.empty()) lines.push_back(std::move(line));
    start = end + 1;
    ++line_no;
  }
  return lines;
}

std::vector<std::string> expand_image_paths(const std::vector<std::string>& args) {
  std::vector<std::string> out;
  auto is_image = [](const std::filesystem::path& p) { return has_image_extension(p.string()); };
  for (const auto& arg : args) {
    std::error_code ec;
    if (std::filesystem::is_directory(arg, ec)) {
      std::vector<std::string> found;
      for (const auto& entry : std::filesystem::directory_iterator(arg, ec))
        if (entry.is_regular_file() && is_image(entry.path())) found.push_back(entry.path().string());
      if (found.empty()) fail(arg, ": folder holds no image files (.png .jpg .jpeg .webp .gif .tif .tiff .bmp)");
      std::sort(found.begin(), found.end());
      out.insert(out.end(), found.begin(), found.end());
    } else if (arg.find_first_of("*?[") != std::string::npos && !std::filesystem::exists(arg, ec)) {
      glob_t g{};
      const int rc = ::glob(arg.c_str(), 0, nullptr, &g);
      std::vector<std::string> found(g.gl_pathv, g.gl_pathv + (rc == 0 ? g.gl_pathc : 0));
      globfree(&g);
      if (found.empty()) fail(arg, ": pattern matches no file");
      std::sort(found.begin(), found.end());
      out.insert(out.end(), found.begin(), found.end());
    } else {
      out.push_back(arg);
    }
  }
  return out;
}

std::vector<std::string> collect_texts(const Args& args) {
  std::vector<std::string> texts = args.all("text");
  if (auto file = args.get("texts-file")) {
    const auto lines = read_text_lines(*file, args);
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
  const size_t given = paths.size();
  std::vector<Image> images = decode_images(paths, skip_bad);
  if (images.empty()) fail("none of the ", given, " images could be decoded");
  return images;
}

std::vector<Image> decode_images(std::vector<std::string>& paths, bool skip_bad) {
  std::vector<Image> images;
  std::vector<std::string> kept;
  for (const auto& p : paths) {
    try {
      images.push_back(load_image(p));
      kept.push_back(p);
    } catch (const Error& e) {
      if (!skip_bad)
        throw Error(e.kind(), e.what(), e.hint().empty() ? "--skip-bad-images leaves out the files that cannot be decoded" : e.hint());
      if (chatty()) std::fprintf(stderr, "mmx: warning: skipping %s\n", e.what());
    }
  }
  paths = std::move(kept);
  return images;
}

bool chatty() { return log_level() >= LogLevel::Warn; }

void verbose_line(const std::string& message) {
  if (log_level() >= LogLevel::Info) std::fprintf(stderr, "mmx: info: %s\n", message.c_str());
}

std::string json_text(const nlohmann::ordered_json& value, int indent) {
  return value.dump(indent, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

std::string extension_of(const std::string& path) {
  const size_t dot = path.find_last_of('.'), slash = path.find_last_of('/');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return "";
  return path.substr(dot);
}

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

}  // namespace mmx::cli
