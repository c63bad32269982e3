// A model's weights as one name → tensor map, from a single safetensors file or from shards listed
// in model.safetensors.index.json; or, when a model has no safetensors, from PyTorch's pytorch_model.bin
// (or its shards), read by a restricted unpickler that runs no code.
#pragma once
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "mmx/safetensors.hpp"

namespace mmx {

class Checkpoint {
 public:
  // `path` is a .safetensors or .bin file, a .safetensors.index.json or .bin.index.json, or a model
  // folder holding one of model.safetensors, model.safetensors.index.json, pytorch_model.bin,
  // pytorch_model.bin.index.json (in that order of preference, as transformers).
  static Checkpoint open(const std::string& path);

  const std::string& source() const { return source_; }
  const std::vector<std::string>& names() const { return names_; }  // sorted
  const TensorInfo* find(const std::string& name) const;
  Tensor get(const std::string& name) const;  // stored dtype
  std::string file_of(const std::string& name) const;
  // The tensor `name` (which must exist) replaced by `value` of the same shape, e.g. with adapters merged
  // in; `origin` says where it came from in messages. Copies of this checkpoint made before are unchanged.
  void replace(const std::string& name, Tensor value, const std::string& origin);
  // Tells the kernel that the pages wholly inside a mapped tensor are not needed now (madvise DONTNEED):
  // they leave the resident set and are read from the file again if the tensor is used later.
  void release(const std::string& name) const;

 private:
  std::string source_;
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::map<std::string, size_t> file_index_;  // tensor name → files_ index
  std::vector<std::string> names_;
  // Tensors read from .bin files: their description and the tensor itself.
  std::map<std::string, std::pair<TensorInfo, Tensor>> loaded_;
  std::map<std::string, std::string> loaded_file_;
  void add_torch_file(const std::string& file, const std::set<std::string>* only = nullptr);
};

}  // namespace mmx
