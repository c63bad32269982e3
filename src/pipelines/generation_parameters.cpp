// A1111's infotext, written and read (its create_infotext and parse_generation_parameters behaviour).
#include <cstdio>
#include "mmx/generation_parameters.hpp"

#include <nlohmann/json.hpp>

#include "mmx/error.hpp"

namespace mmx {
namespace {

std::string quoted(const std::string& v) {  // A1111's quote(): JSON only where the plain text would not parse
  if (v.find_first_of(",:\n") == std::string::npos) return v;
  return nlohmann::json(v).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

bool is_key_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == ' ' || c == '-' || c == '/';
}

// The "Key: value" pairs of a line, as A1111's regex \s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)
// reads them.
std::vector<std::pair<std::string, std::string>> fields_of(const std::string& line) {
  std::vector<std::pair<std::string, std::string>> out;
  size_t at = 0;
  while (at < line.size()) {
    while (at < line.size() && std::isspace(static_cast<unsigned char>(line[at]))) ++at;
    const size_t key_start = at;
    while (at < line.size() && is_key_char(line[at])) ++at;
    if (at == key_start || at >= line.size() || line[at] != ':') {  // not a pair: skip to the next comma
      const size_t comma = line.find(',', at);
      if (comma == std::string::npos) break;
      at = comma + 1;
      continue;
    }
    std::string key = line.substr(key_start, at - key_start);
    while (!key.empty() && key.back() == ' ') key.pop_back();
    ++at;
    while (at < line.size() && std::isspace(static_cast<unsigned char>(line[at]))) ++at;
    std::string value;
    if (at < line.size() && line[at] == '"') {
      size_t end = at + 1;
      while (end < line.size() && line[end] != '"') end += line[end] == '\\' ? 2 : 1;
      try {
        value = nlohmann::json::parse(line.substr(at, end + 1 - at)).get<std::string>();
      } catch (const std::exception&) {
        value = line.substr(at, end + 1 - at);
      }
      at = end + 1;
      const size_t comma = line.find(',', at);
      at = comma == std::string::npos ? line.size() : comma + 1;
    } else {
      const size_t comma = line.find(',', at);
      value = line.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
      at = comma == std::string::npos ? line.size() : comma + 1;
    }
    while (!value.empty() && value.back() == ' ') value.pop_back();
    out.emplace_back(key, value);
  }
  return out;
}

}  // namespace

std::optional<std::string> GenerationParameters::get(const std::string& key) const {
  for (const auto& [k, v] : fields)
    if (k == key) return v;
  return std::nullopt;
}

void GenerationParameters::set(const std::string& key, const std::string& value) {
  for (auto& [k, v] : fields)
    if (k == key) {
      v = value;
      return;
    }
  fields.emplace_back(key, value);
}

GenerationParameters GenerationParameters::basic(const std::string& prompt, const std::optional<std::string>& negative_prompt,
                                                 int64_t steps, const std::string& sampler, double guidance,
                                                 std::optional<uint64_t> seed, int64_t width, int64_t height,
                                                 const std::string& model) {
  char cfg[32];
  std::snprintf(cfg, sizeof cfg, "%g", guidance);
  GenerationParameters p;
  p.prompt = prompt;
  p.negative_prompt = negative_prompt;
  p.fields = {{"Steps", std::to_string(steps)}, {"Sampler", sampler}, {"CFG scale", cfg}};
  if (seed) p.fields.emplace_back("Seed", std::to_string(*seed));
  p.fields.emplace_back("Size", std::to_string(width) + "x" + std::to_string(height));
  p.fields.emplace_back("Model", model);
  return p;
}

std::string GenerationParameters::to_text() const {
  std::string text = prompt;
  if (negative_prompt && !negative_prompt->empty()) text += "\nNegative prompt: " + *negative_prompt;
  std::string line;
  for (const auto& [k, v] : fields) line += (line.empty() ? "" : ", ") + k + ": " + quoted(v);
  return text + "\n" + line;
}

GenerationParameters GenerationParameters::parse(const std::string& text, const std::string& source) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t end = text.find('\n', start);
    lines.push_back(text.substr(start, end == std::string::npos ? std::string::npos : end - start));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  while (!lines.empty() && lines.back().find_first_not_of(" \t\r") == std::string::npos) lines.pop_back();
  GenerationParameters p;
  if (lines.empty() || fields_of(lines.back()).size() < 3)
    usage_error(source, ": its parameters hold no line of settings (\"Steps: N, Sampler: S, ...\"), so they are not "
                "a generated image's parameters");
  p.fields = fields_of(lines.back());
  lines.pop_back();
  bool negative = false;
  for (std::string line : lines) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.rfind("Negative prompt:", 0) == 0) {
      negative = true;
      line = line.substr(16);
      if (!line.empty() && line.front() == ' ') line.erase(0, 1);
      p.negative_prompt = line;
      continue;
    }
    std::string& target = negative ? *p.negative_prompt : p.prompt;
    target += (target.empty() ? "" : "\n") + line;
  }
  return p;
}

}  // namespace mmx
