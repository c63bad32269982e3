// A model's weights as one name → tensor map, from a single safetensors file or from shards listed
// in model.safetensors.index.json.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "mmx/safetensors.hpp"

namespace mmx {

class Checkpoint {
 public:
  // `path` is a .safetensors file, a .safetensors.index.json, or a model folder holding
  // model.safetensors or model.safetensors.index.json.
  static Checkpoint open(const std::string& path);

  const std::string& source() const { return source_; }
  const std::vector<std::string>& names() const { return names_; }  // sorted
  const TensorInfo* find(const std::string& name) const;
  Tensor get(const std::string& name) const;  // stored dtype
  std::string file_of(const std::string& name) const;

 private:
  std::string source_;
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::map<std::string, size_t> file_index_;  // tensor name → files_ index
  std::vector<std::string> names_;
};

}  // namespace mmx
