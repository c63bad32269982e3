// Typed reads from a JSON object (config.json, tokenizer_config.json, ...): every error names the
// file and the key, and says what type was expected and what was found.
#pragma once
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace mmx {

class JsonObject {
 public:
  JsonObject(nlohmann::json json, std::string source);
  // Parses a file; a missing file, invalid JSON or a non-object top level is an error naming it.
  static JsonObject load(const std::string& path);

  const std::string& source() const { return source_; }
  const nlohmann::json& json() const { return json_; }
  bool has(const std::string& key) const;  // present and not null

  int64_t get_int(const std::string& key, int64_t fallback) const;
  double get_float(const std::string& key, double fallback) const;
  bool get_bool(const std::string& key, bool fallback) const;
  std::string get_string(const std::string& key, const std::string& fallback) const;
  std::optional<std::string> get_optional_string(const std::string& key) const;
  std::optional<bool> get_optional_bool(const std::string& key) const;

  int64_t require_int(const std::string& key) const;
  std::string require_string(const std::string& key) const;

 private:
  [[noreturn]] void type_error(const std::string& key, const char* expected) const;
  const nlohmann::json* find(const std::string& key) const;
  nlohmann::json json_;
  std::string source_;
};

const char* json_type_name(const nlohmann::json& value);

}  // namespace mmx
