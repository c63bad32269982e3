#include "mmx/safetensors.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "mmx/files.hpp"
#include "core/checked.hpp"
#include "io/json_config.hpp"

namespace mmx {

namespace {

constexpr uint64_t kMaxHeaderBytes = 100u << 20;  // the reference implementation's limit

struct DTypeEntry {
  const char* name;
  size_t size;
  bool supported;
  DType dtype;
};
constexpr DTypeEntry kDTypes[] = {
    {"F64", 8, true, DType::F64},  {"F32", 4, true, DType::F32},   {"F16", 2, true, DType::F16},
    {"BF16", 2, true, DType::BF16}, {"I64", 8, true, DType::I64},  {"I32", 4, true, DType::I32},
    {"U8", 1, true, DType::U8},    {"BOOL", 1, true, DType::Bool}, {"I16", 2, false, DType::F32},
    {"I8", 1, false, DType::F32},  {"U16", 2, false, DType::F32},  {"U32", 4, false, DType::F32},
    {"U64", 8, false, DType::F32}, {"F8_E4M3", 1, false, DType::F32}, {"F8_E5M2", 1, false, DType::F32},
};

const DTypeEntry* find_dtype(const std::string& name) {
  for (const auto& e : kDTypes)
    if (name == e.name) return &e;
  return nullptr;
}

struct Mapping {
  void* address = nullptr;
  size_t size = 0;
  ~Mapping() {
    if (address) ::munmap(address, size);
  }
};

}  // namespace

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  SafetensorsFile file;
  file.path_ = path;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path, ": cannot open: ", std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    fail(path, ": cannot stat: ", std::strerror(errno));
  }
  const auto size = static_cast<uint64_t>(st.st_size);
  if (size < 8) {
    ::close(fd);
    fail(path, ": not a safetensors file: ", size, " bytes, shorter than the 8-byte header length");
  }
  auto mapping = std::make_shared<Mapping>();
  mapping->address = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (mapping->address == MAP_FAILED) {
    mapping->address = nullptr;
    fail(path, ": mmap failed: ", std::strerror(errno));
  }
  mapping->size = size;
  const char* base = static_cast<const char*>(mapping->address);

  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | static_cast<unsigned char>(base[i]);
  if (header_len > kMaxHeaderBytes)
    fail(path, ": header length ", header_len, " exceeds the 100 MiB limit (corrupt or not safetensors)");
  if (header_len > size - 8)
    fail(path, ": header length ", header_len, " runs past the end of the file (", size, " bytes): truncated?");
  const std::string_view header(base + 8, header_len);
  if (find_invalid_utf8(header) != std::string_view::npos) fail(path, ": header is not valid UTF-8");

  // Duplicate names would be silently merged by a JSON parser; catch them while parsing.
  std::set<std::string> seen;
  std::string duplicate;
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(header, [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& value) {
      if (event == nlohmann::json::parse_event_t::key && depth == 1 && value.is_string()) {
        const auto& key = value.get_ref<const std::string&>();
        if (!seen.insert(key).second && duplicate.empty()) duplicate = key;
      }
      return true;
    });
  } catch (const nlohmann::json::exception& e) {  // syntax errors and out-of-range numbers
    fail(path, ": header is not valid JSON (", e.what(), ")");
  }
  if (!duplicate.empty()) fail(path, ": tensor '", duplicate, "' appears twice in the header");
  if (!json.is_object()) fail(path, ": header must be a JSON object, found ", json_type_name(json));
  // As the format's reference reader (serde_json on the header, which must start with '{'): the object may be
  // padded with whitespace, nothing else — no byte-order mark before it (nlohmann would skip one), no NULs after.
  const size_t last = header.find_last_not_of(" \t\r\n");
  if (header.empty() || header.front() != '{' || last == std::string_view::npos || header[last] != '}')
    fail(path, ": header must be one JSON object padded only with spaces (it ",
         header.empty() || header.front() != '{' ? "does not start with '{'" : "has bytes after its closing '}'",
         "): corrupt or not safetensors");

  const uint64_t data_size = size - 8 - header_len;
  for (auto it = json.begin(); it != json.end(); ++it) {
    const std::string& name = it.key();
    const auto& entry = it.value();
    if (name == "__metadata__") {
      if (!entry.is_object()) fail(path, ": __metadata__ must be an object of strings");
      for (auto m = entry.begin(); m != entry.end(); ++m) {
        if (!m.value().is_string()) fail(path, ": __metadata__ value for '", m.key(), "' must be a string");
        file.metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string where = str(path, ": tensor '", name, "'");
    if (!entry.is_object()) fail(where, ": entry must be an object, found ", json_type_name(entry));
    auto field = [&](const char* key) -> const nlohmann::json& {
      auto f = entry.find(key);
      if (f == entry.end()) fail(where, ": missing '", key, "'");
      return *f;
    };
    const auto& dtype = field("dtype");
    const auto& shape = field("shape");
    const auto& offsets = field("data_offsets");
    if (!dtype.is_string()) fail(where, ": 'dtype' must be a string");
    const DTypeEntry* type = find_dtype(dtype.get<std::string>());
    if (!type) fail(where, ": unknown dtype '", dtype.get<std::string>(), "'");
    if (!shape.is_array()) fail(where, ": 'shape' must be an array of integers");
    TensorInfo info{name, type->name, type->dtype, type->supported, {}, 0, 0};
    uint64_t numel = 1;
    for (const auto& d : shape) {
      if (!d.is_number_unsigned()) fail(where, ": shape ", shape.dump(), " must hold non-negative integers");
      const uint64_t v = d.get<uint64_t>();
      numel = checked_mul(numel, v, where + ": shape " + shape.dump());
      if (numel > uint64_t(INT64_MAX) || v > uint64_t(INT64_MAX)) fail(where, ": shape ", shape.dump(), " is too large");
      info.shape.push_back(static_cast<int64_t>(v));
    }
    if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
        !offsets[1].is_number_unsigned())
      fail(where, ": 'data_offsets' must be [begin, end] with non-negative integers, found ", offsets.dump());
    const uint64_t begin = offsets[0].get<uint64_t>(), end = offsets[1].get<uint64_t>();
    if (begin > end) fail(where, ": data_offsets [", begin, ", ", end, "] end before they begin");
    if (end > data_size)
      fail(where, ": data_offsets [", begin, ", ", end, "] run past the data section (", data_size,
           " bytes): the file is truncated or the header is corrupt");
    const uint64_t bytes = checked_mul<uint64_t>(numel, type->size, where + ": bytes of its shape");
    if (end - begin != bytes)
      fail(where, ": ", end - begin, " bytes for shape ", shape_str(info.shape), " of ", type->name, " (expected ",
           bytes, ")");
    info.begin = begin;
    info.end = end;
    file.tensors_.push_back(std::move(info));
  }
  // Byte ranges must tile the data section exactly, as the reference implementation requires.
  std::vector<const TensorInfo*> order;
  for (const auto& t : file.tensors_) order.push_back(&t);
  std::sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->begin < b->begin || (a->begin == b->begin && a->end < b->end); });
  uint64_t expected_begin = 0;
  for (size_t i = 0; i < order.size(); ++i) {
    const auto* t = order[i];
    if (t->begin < expected_begin)
      fail(path, ": tensor '", t->name, "' bytes [", t->begin, ", ", t->end, ") overlap tensor '", order[i - 1]->name, "'");
    if (t->begin > expected_begin)
      fail(path, ": gap in the data section before tensor '", t->name, "' (bytes ", expected_begin, "..", t->begin, ")");
    expected_begin = t->end;
  }
  if (expected_begin != data_size)
    fail(path, ": data section has ", data_size - expected_begin, " bytes that belong to no tensor");

  for (size_t i = 0; i < file.tensors_.size(); ++i) file.index_[file.tensors_[i].name] = i;
  file.data_ = base + 8 + header_len;
  file.mapping_ = std::shared_ptr<const void>(mapping, mapping->address);
  return file;
}

const TensorInfo* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

Tensor SafetensorsFile::get(const std::string& name) const {
  const TensorInfo* info = find(name);
  if (!info) fail(path_, ": no tensor named '", name, "'");
  if (!info->supported) fail(path_, ": tensor '", name, "' has dtype ", info->dtype_name, ", which mmx does not support");
  const char* p = data_ + info->begin;
  const size_t align = dtype_size(info->dtype);
  if (reinterpret_cast<uintptr_t>(p) % align == 0) return Tensor::from_external(p, info->shape, info->dtype, mapping_);
  Tensor copy = Tensor::empty(info->shape, info->dtype);  // unaligned in the file: copy once
  std::memcpy(copy.raw_mutable(), p, info->end - info->begin);
  return copy;
}

void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  size_t offset = 0;
  std::set<std::string> names;
  for (const auto& [name, t] : tensors) {
    if (name == "__metadata__" || !names.insert(name).second) fail("write_safetensors: bad or duplicate name '", name, "'");
    header[name] = {{"dtype", dtype_name(t.dtype())}, {"shape", t.shape()}, {"data_offsets", {offset, offset + t.nbytes()}}};
    offset += t.nbytes();
  }
  std::string json = header.dump();
  json.append((8 - json.size() % 8) % 8, ' ');  // keeps the data section 8-byte aligned
  std::string head(8, '\0');
  for (int i = 0; i < 8; ++i) head[i] = static_cast<char>((uint64_t(json.size()) >> (8 * i)) & 0xff);
  head += json;
  // Streamed tensor by tensor: a multi-gigabyte checkpoint is never copied into one buffer.
  write_atomically(path, [&](const std::string& tmp) {
    std::FILE* f = std::fopen(tmp.c_str(), "wb");
    if (!f) fail(path, ": cannot create: ", std::strerror(errno));
    bool ok = std::fwrite(head.data(), 1, head.size(), f) == head.size();
    for (const auto& [name, t] : tensors)
      if (ok && t.nbytes() > 0) ok = std::fwrite(t.raw(), 1, t.nbytes(), f) == t.nbytes();
    ok = ok && std::fflush(f) == 0;
    const int err = errno;
    if (std::fclose(f) != 0 || !ok) fail(path, ": write failed: ", std::strerror(err));
  });
}

}  // namespace mmx
