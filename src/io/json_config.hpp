// Typed reads from a JSON object (config.json, tokenizer_config.json, ...): every error names the
// file and the key, and says what type was expected and what was found.
#pragma once
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace mmx {

// What a config value can mean, checked when the config is read: a width of 2⁶² or a layer count of 10⁹
// is no model, and the sizes computed from such values (weights, activations) would overflow before any
// weight is compared. `why` goes into the error.
struct IntLimits {
  int64_t min, max;
  const char* why;
};
struct FloatLimits {
  double min, max;  // finite always; min excluded when `above_min`
  bool above_min;
  const char* why;
};

namespace limits {
// Widths: hidden, intermediate, vocabulary, position table, channels. The largest vocabularies hold about
// 256 000 entries and the widest layers about 50 000; 2²⁴ leaves room and keeps products of three in int64.
inline constexpr IntLimits kWidth{1, int64_t(1) << 24, "a width above 2^24 is no model's"};
inline constexpr IntLimits kLayers{0, 1024, "a stack of more than 1024 layers is no model's"};
inline constexpr IntLimits kHeads{1, 4096, "attention splits into 1 to 4096 heads"};
inline constexpr IntLimits kGroups{1, 4096, "group normalization splits channels into 1 to 4096 groups"};
inline constexpr IntLimits kImageChannels{1, 4, "images have 1 to 4 channels"};
inline constexpr IntLimits kImageSide{1, 8192, "a model's input side is at most 8192 pixels (Pillow's decompression-bomb limit)"};
inline constexpr IntLimits kKernel{1, 15, "convolution kernels are 1 to 15 wide"};
inline constexpr IntLimits kTokenId{0, (int64_t(1) << 24) - 1, "a token id indexes a vocabulary of at most 2^24 entries"};
inline constexpr IntLimits kTokenCount{1, INT64_MAX, "a tokenizer's length limit is at least one token"};
inline constexpr FloatLimits kEpsilon{0, 1, false, "an epsilon is a small non-negative number added to a variance"};
inline constexpr FloatLimits kPositiveScale{0, 1e6, true, "a scale factor is positive and finite"};
inline constexpr FloatLimits kFinite{-1e6, 1e6, false, "the value must be a finite number"};
}  // namespace limits

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

  // As above, refused (naming the file, key, range and why) outside `limits`; the fallback is not checked.
  int64_t get_int(const std::string& key, int64_t fallback, IntLimits limits) const;
  int64_t require_int(const std::string& key, IntLimits limits) const;
  double get_float(const std::string& key, double fallback, FloatLimits limits) const;
  // A count that a config saves as a float when it has no bound (transformers writes model_max_length
  // 1e30): 2⁶³ or more is INT64_MAX, anything else must be an integral value within `limits`.
  int64_t get_count(const std::string& key, int64_t fallback, IntLimits limits) const;
  // Checks a value read some other way (one entry of a list) against `limits`, in the same words.
  void check(const std::string& key, int64_t value, IntLimits limits) const;
  void check(const std::string& key, double value, FloatLimits limits) const;
  // One entry of the list (or pair) under `key`: an integer (or any number) within `limits`, else refused
  // naming the file and key. The only way list entries are read, so a float where an integer belongs is an
  // error, never a cast.
  int64_t int_element(const std::string& key, const nlohmann::json& element, IntLimits limits) const;
  double float_element(const std::string& key, const nlohmann::json& element, FloatLimits limits) const;
  // An object key under `parent` that is a decimal integer ({"49406": {...}} in added_tokens_decoder).
  int64_t int_key(const std::string& parent, const std::string& key, IntLimits limits) const;
  std::string require_string(const std::string& key) const;

 private:
  [[noreturn]] void type_error(const std::string& key, const char* expected) const;
  const nlohmann::json* find(const std::string& key) const;
  nlohmann::json json_;
  std::string source_;
};

const char* json_type_name(const nlohmann::json& value);

}  // namespace mmx
