// --lora FILE[:WEIGHT] and <lora:name:weight> prompt tags (see mmx/lora.hpp).
#include <cmath>
#include <filesystem>
#include <optional>

#include "mmx/error.hpp"
#include "mmx/lora.hpp"

namespace mmx {
namespace {

namespace fs = std::filesystem;

std::optional<double> parse_weight(const std::string& s) {
  if (s.empty()) return std::nullopt;
  size_t used = 0;
  double w = 0;
  try {
    w = std::stod(s, &used);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  if (used != s.size() || !std::isfinite(w)) return std::nullopt;
  return w;
}

// The adapter's weight within what a style adapter is used at: A1111 users write 0.3–1.5, negative
// values invert a style; beyond ±10 the merged weights are dominated by the adapter and the output is noise.
double checked_weight(double w, const std::string& what) {
  if (std::fabs(w) > 10) usage_error(what, ": a LoRA weight of ", w, " is outside [-10, 10]");
  return w;
}

std::string find_in_dir(const std::string& dir, const std::string& name) {
  const fs::path direct = fs::path(dir) / (name + ".safetensors");
  std::error_code ec;
  if (fs::is_regular_file(direct, ec)) return direct.string();
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
    if (it->is_regular_file() && it->path().filename() == name + ".safetensors") return it->path().string();
  usage_error("<lora:", name, ">: no ", name, ".safetensors in ", dir, " or the folders below it");
}

}  // namespace

LoraWeight parse_lora_option(const std::string& spec) {
  LoraWeight l{spec, 1.0};
  const size_t colon = spec.rfind(':');
  if (colon != std::string::npos && colon > 0)
    if (const auto w = parse_weight(spec.substr(colon + 1))) l = {spec.substr(0, colon), checked_weight(*w, spec)};
  std::error_code ec;
  if (!fs::is_regular_file(l.path, ec)) usage_error("--lora ", spec, ": no file ", l.path);
  return l;
}

LoraWeight find_lora(const std::string& name, double weight, const std::string& lora_dir) {
  if (lora_dir.empty()) usage_error("<lora:", name, ">: give --lora-dir, the folder the adapters are in");  // never the working directory
  return {find_in_dir(lora_dir, name), checked_weight(weight, "<lora:" + name + ">")};
}

PromptLoras extract_prompt_loras(const std::string& prompt, const std::string& lora_dir) {
  PromptLoras out;
  size_t pos = 0;
  for (size_t open; (open = prompt.find("<lora:", pos)) != std::string::npos;) {
    const size_t close = prompt.find('>', open);
    if (close == std::string::npos) usage_error("the prompt's '", prompt.substr(open, 40), "' has no closing '>'");
    out.prompt += prompt.substr(pos, open - pos);
    const std::string body = prompt.substr(open + 6, close - open - 6);
    const std::string tag = "<lora:" + body + ">";
    std::string name = body;
    double weight = 1.0;
    if (const size_t colon = body.find(':'); colon != std::string::npos) {
      name = body.substr(0, colon);
      const auto w = parse_weight(body.substr(colon + 1));
      if (!w) usage_error(tag, ": the weight '", body.substr(colon + 1), "' is no number (write <lora:name:0.8>)");
      weight = *w;
    }
    if (name.empty()) usage_error(tag, ": the tag names no adapter");
    out.loras.push_back(find_lora(name, weight, lora_dir));
    pos = close + 1;
  }
  out.prompt += prompt.substr(pos);
  return out;
}

}  // namespace mmx
