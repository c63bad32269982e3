#include "io/checkpoint.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>

#include "mmx/files.hpp"
#include "core/log.hpp"
#include "io/json_config.hpp"
#include "io/torch_checkpoint.hpp"

namespace mmx {

namespace {
bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
std::string parent_dir(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}
}  // namespace

Checkpoint Checkpoint::open(const std::string& path) {
  std::string target = path;
  if (dir_exists(path)) {
    const std::string single = join_path(path, "model.safetensors");
    const std::string index = join_path(path, "model.safetensors.index.json");
    if (file_exists(single)) target = single;
    else if (file_exists(index)) target = index;
    else if (file_exists(join_path(path, "pytorch_model.bin"))) target = join_path(path, "pytorch_model.bin");
    else if (file_exists(join_path(path, "pytorch_model.bin.index.json"))) target = join_path(path, "pytorch_model.bin.index.json");
    else
      fail(path, ": no model.safetensors, model.safetensors.index.json, pytorch_model.bin or pytorch_model.bin.index.json "
                 "in this folder");
  }
  Checkpoint ckpt;
  ckpt.source_ = target;
  if (ends_with(target, ".bin")) {
    ckpt.add_torch_file(target);
  } else if (ends_with(target, ".bin.index.json")) {  // shards of pytorch_model.bin
    const JsonObject index = JsonObject::load(target);
    auto map = index.json().find("weight_map");
    if (map == index.json().end() || !map->is_object()) fail(target, ": 'weight_map' is missing or not an object");
    std::map<std::string, std::set<std::string>> names_of_shard;
    for (auto it = map->begin(); it != map->end(); ++it) {
      const std::string shard = it.value().is_string() ? it.value().get<std::string>() : "";
      if (shard.empty() || shard.find('/') != std::string::npos || shard == "." || shard == "..")
        fail(target, ": weight_map['", it.key(), "'] is not a file name in this folder");
      names_of_shard[shard].insert(it.key());
    }
    for (const auto& [shard, names] : names_of_shard) {
      const std::string shard_path = join_path(parent_dir(target), shard);
      if (!file_exists(shard_path)) fail(target, ": shard '", shard, "' does not exist");
      ckpt.add_torch_file(shard_path, &names);
      for (const auto& name : names)
        if (!ckpt.loaded_.count(name)) fail(target, ": tensor '", name, "' is listed in shard '", shard, "' but that file does not hold it");
    }
  } else if (ends_with(target, ".index.json")) {
    const JsonObject index = JsonObject::load(target);
    auto map = index.json().find("weight_map");
    if (map == index.json().end() || !map->is_object())
      fail(target, ": 'weight_map' is missing or not an object");
    std::map<std::string, size_t> shard_of_file;
    const std::string dir = parent_dir(target);
    for (auto it = map->begin(); it != map->end(); ++it) {
      if (!it.value().is_string()) fail(target, ": weight_map['", it.key(), "'] must be a file name");
      const std::string shard = it.value().get<std::string>();
      if (shard.empty() || shard.find('/') != std::string::npos || shard == "." || shard == "..")
        fail(target, ": weight_map['", it.key(), "'] = '", shard, "' is not a file name in this folder");
      auto found = shard_of_file.find(shard);
      if (found == shard_of_file.end()) {
        const std::string shard_path = join_path(dir, shard);
        if (!file_exists(shard_path)) fail(target, ": shard '", shard, "' (for tensor '", it.key(), "') does not exist");
        ckpt.files_.push_back(std::make_shared<SafetensorsFile>(SafetensorsFile::open(shard_path)));
        found = shard_of_file.emplace(shard, ckpt.files_.size() - 1).first;
      }
      if (!ckpt.files_[found->second]->find(it.key()))
        fail(target, ": tensor '", it.key(), "' is listed in shard '", shard, "' but that file does not hold it");
      ckpt.file_index_[it.key()] = found->second;
    }
    for (size_t f = 0; f < ckpt.files_.size(); ++f)
      for (const auto& t : ckpt.files_[f]->tensors())
        if (!ckpt.file_index_.count(t.name))
          log_debug(ckpt.files_[f]->path(), ": tensor '", t.name, "' is not in the index; ignored");
  } else {
    ckpt.files_.push_back(std::make_shared<SafetensorsFile>(SafetensorsFile::open(target)));
    for (const auto& t : ckpt.files_[0]->tensors()) ckpt.file_index_[t.name] = 0;
  }
  for (const auto& [name, file] : ckpt.file_index_) ckpt.names_.push_back(name);
  for (const auto& [name, loaded] : ckpt.loaded_) ckpt.names_.push_back(name);
  std::sort(ckpt.names_.begin(), ckpt.names_.end());
  return ckpt;
}

void Checkpoint::add_torch_file(const std::string& file, const std::set<std::string>* only) {
  log_info(file, ": PyTorch pickle checkpoint, read without running code (prefer safetensors)");
  for (auto& [name, tensor] : read_torch_state_dict(file)) {
    if (only && !only->count(name)) continue;
    if (loaded_.count(name)) fail(file, ": tensor '", name, "' appears twice");
    TensorInfo info;
    info.name = name;
    info.dtype = tensor.dtype();
    info.dtype_name = dtype_name(tensor.dtype());
    info.supported = true;
    info.shape = tensor.shape();
    info.begin = info.end = 0;
    loaded_file_[name] = file;
    loaded_.emplace(name, std::make_pair(std::move(info), std::move(tensor)));
  }
}

const TensorInfo* Checkpoint::find(const std::string& name) const {
  if (auto l = loaded_.find(name); l != loaded_.end()) return &l->second.first;
  auto it = file_index_.find(name);
  return it == file_index_.end() ? nullptr : files_[it->second]->find(name);
}

Tensor Checkpoint::get(const std::string& name) const {
  if (auto l = loaded_.find(name); l != loaded_.end()) return l->second.second;
  auto it = file_index_.find(name);
  if (it == file_index_.end()) fail(source_, ": no tensor named '", name, "'");
  return files_[it->second]->get(name);
}

void Checkpoint::replace(const std::string& name, Tensor value, const std::string& origin) {
  const TensorInfo* info = find(name);
  if (!info) fail(source_, ": no tensor named '", name, "' to replace");
  if (info->shape != value.shape())
    fail(source_, ": '", name, "' is ", shape_str(info->shape), ", its replacement ", shape_str(value.shape()));
  TensorInfo replaced = *info;
  replaced.dtype = value.dtype();
  replaced.dtype_name = dtype_name(value.dtype());
  replaced.supported = true;
  loaded_[name] = {replaced, std::move(value)};
  loaded_file_[name] = file_of(name) + " + " + origin;
}

void Checkpoint::release(const std::string& name) const {
  if (loaded_.count(name) || !file_index_.count(name)) return;  // read into memory: nothing mapped
  const Tensor t = get(name);
  const long page = sysconf(_SC_PAGESIZE);
  const auto begin = reinterpret_cast<uintptr_t>(t.raw()), end = begin + t.nbytes();
  const uintptr_t first = (begin + uintptr_t(page) - 1) & ~uintptr_t(page - 1), last = end & ~uintptr_t(page - 1);
  if (last > first) madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

std::string Checkpoint::file_of(const std::string& name) const {
  if (auto l = loaded_file_.find(name); l != loaded_file_.end()) return l->second;
  auto it = file_index_.find(name);
  return it == file_index_.end() ? source_ : files_[it->second]->path();
}

}  // namespace mmx
