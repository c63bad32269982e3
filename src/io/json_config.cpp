#include "io/json_config.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "mmx/files.hpp"
#include "mmx/error.hpp"

namespace mmx {

const char* json_type_name(const nlohmann::json& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "a boolean";
  if (v.is_number_integer()) return "an integer";
  if (v.is_number_float()) return "a floating-point number";
  if (v.is_string()) return "a string";
  if (v.is_array()) return "an array";
  return "an object";
}

JsonObject::JsonObject(nlohmann::json json, std::string source) : json_(std::move(json)), source_(std::move(source)) {
  if (!json_.is_object()) fail(source_, ": expected a JSON object at the top level, found ", json_type_name(json_));
}

JsonObject JsonObject::load(const std::string& path) {
  const std::string text = read_file(path);
  nlohmann::json parsed;
  try {
    parsed = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {  // syntax errors and out-of-range numbers
    fail(path, ": invalid JSON (", e.what(), ")");
  }
  return JsonObject(std::move(parsed), path);
}

const nlohmann::json* JsonObject::find(const std::string& key) const {
  auto it = json_.find(key);
  if (it == json_.end() || it->is_null()) return nullptr;
  return &*it;
}

bool JsonObject::has(const std::string& key) const { return find(key) != nullptr; }

void JsonObject::type_error(const std::string& key, const char* expected) const {
  fail(source_, ": key '", key, "': expected ", expected, ", found ", json_type_name(json_.at(key)), " (",
       json_.at(key).dump(), ")");
}

int64_t JsonObject::get_int(const std::string& key, int64_t fallback) const {
  const auto* v = find(key);
  if (!v) return fallback;
  if (!v->is_number_integer()) type_error(key, "an integer");
  if (v->is_number_unsigned() && v->get<uint64_t>() > uint64_t(INT64_MAX))
    fail(source_, ": key '", key, "' is ", v->get<uint64_t>(), ", beyond a 64-bit integer");
  return v->get<int64_t>();
}

int64_t JsonObject::int_element(const std::string& key, const nlohmann::json& e, IntLimits limits) const {
  if (!e.is_number_integer())
    fail(source_, ": key '", key, "' must hold integers, found ", json_type_name(e), " (", e.dump(), ")");
  if (e.is_number_unsigned() && e.get<uint64_t>() > uint64_t(INT64_MAX))
    fail(source_, ": key '", key, "' holds ", e.get<uint64_t>(), ", beyond a 64-bit integer");
  const int64_t v = e.get<int64_t>();
  check(key, v, limits);
  return v;
}

int64_t JsonObject::int_key(const std::string& parent, const std::string& key, IntLimits limits) const {
  const bool digits = !key.empty() && key.size() <= 18 &&
                      std::all_of(key.begin(), key.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (!digits) fail(source_, ": key '", parent, "' has an entry '", key, "' that is not a non-negative integer");
  const int64_t v = std::stoll(key);
  check(parent, v, limits);
  return v;
}

double JsonObject::float_element(const std::string& key, const nlohmann::json& e, FloatLimits limits) const {
  if (!e.is_number())
    fail(source_, ": key '", key, "' must hold numbers, found ", json_type_name(e), " (", e.dump(), ")");
  const double v = e.get<double>();
  check(key, v, limits);
  return v;
}

double JsonObject::get_float(const std::string& key, double fallback) const {
  const auto* v = find(key);
  if (!v) return fallback;
  if (!v->is_number()) type_error(key, "a number");
  return v->get<double>();
}

bool JsonObject::get_bool(const std::string& key, bool fallback) const {
  const auto* v = find(key);
  if (!v) return fallback;
  if (!v->is_boolean()) type_error(key, "a boolean");
  return v->get<bool>();
}

std::string JsonObject::get_string(const std::string& key, const std::string& fallback) const {
  const auto* v = find(key);
  if (!v) return fallback;
  if (!v->is_string()) type_error(key, "a string");
  return v->get<std::string>();
}

std::optional<std::string> JsonObject::get_optional_string(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  return get_string(key, "");
}

std::optional<bool> JsonObject::get_optional_bool(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  return get_bool(key, false);
}

int64_t JsonObject::require_int(const std::string& key) const {
  if (!has(key)) fail(source_, ": required key '", key, "' is missing");
  return get_int(key, 0);
}

std::string JsonObject::require_string(const std::string& key) const {
  if (!has(key)) fail(source_, ": required key '", key, "' is missing");
  return get_string(key, "");
}

void JsonObject::check(const std::string& key, int64_t value, IntLimits limits) const {
  if (value < limits.min || value > limits.max)
    fail(source_, ": key '", key, "' is ", value, ", outside [", limits.min, ", ", limits.max, "]: ", limits.why);
}

void JsonObject::check(const std::string& key, double value, FloatLimits limits) const {
  if (!std::isfinite(value) || value < limits.min || value > limits.max || (limits.above_min && value == limits.min))
    fail(source_, ": key '", key, "' is ", value, ", outside ", limits.above_min ? "(" : "[", limits.min, ", ",
         limits.max, "]: ", limits.why);
}

int64_t JsonObject::get_int(const std::string& key, int64_t fallback, IntLimits limits) const {
  if (!has(key)) return fallback;
  const int64_t v = get_int(key, fallback);
  check(key, v, limits);
  return v;
}

int64_t JsonObject::get_count(const std::string& key, int64_t fallback, IntLimits limits) const {
  if (!has(key)) return fallback;
  const double d = get_float(key, 0);
  if (d >= 9.2e18) return std::numeric_limits<int64_t>::max();
  if (!(d >= static_cast<double>(limits.min)) || d != std::floor(d))
    fail(source_, ": key '", key, "' is ", d, ", not a whole number of at least ", limits.min, ": ", limits.why);
  return static_cast<int64_t>(d);
}

int64_t JsonObject::require_int(const std::string& key, IntLimits limits) const {
  const int64_t v = require_int(key);
  check(key, v, limits);
  return v;
}

double JsonObject::get_float(const std::string& key, double fallback, FloatLimits limits) const {
  if (!has(key)) return fallback;
  const double v = get_float(key, fallback);
  check(key, v, limits);
  return v;
}

}  // namespace mmx
