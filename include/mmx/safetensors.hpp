// safetensors: an mmap'd reader that validates the whole header before any tensor is used, and an
// atomic writer. Format: u64 little-endian header length N, N bytes of JSON, then the data section.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "mmx/tensor.hpp"

namespace mmx {

struct TensorInfo {
  std::string name;
  std::string dtype_name;  // as written in the file: "F32", "BF16", ...
  DType dtype;             // meaningful when `supported`
  bool supported;          // mmx can compute with this dtype
  Shape shape;
  size_t begin, end;       // byte range inside the data section
};

class SafetensorsFile {
 public:
  // Maps and validates: header length within the file, well-formed JSON object, no duplicate names,
  // known dtypes, non-negative shapes, byte ranges equal to shape × dtype size, inside the data
  // section, without overlaps or gaps. Any violation is an error naming the file and tensor.
  static SafetensorsFile open(const std::string& path);

  const std::string& path() const { return path_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }  // in file order
  const TensorInfo* find(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // The tensor in its stored dtype. Zero-copy (a view of the mapping) when suitably aligned.
  Tensor get(const std::string& name) const;

 private:
  std::string path_;
  std::shared_ptr<const void> mapping_;
  const char* data_ = nullptr;  // start of the data section
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// Writes tensors (in the given order) to `path` atomically: a temporary file renamed into place.
void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace mmx
