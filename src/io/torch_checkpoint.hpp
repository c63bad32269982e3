// PyTorch's torch.save format (a zip archive since torch 1.6: <name>/data.pkl, <name>/data/<key>) read
// without running any of it: the pickle goes through a restricted reader that knows only what a state
// dict is made of (OrderedDict, tensor rebuilds, typed storages) and refuses every other global.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "mmx/tensor.hpp"

namespace mmx {

// The state dict in a pytorch_model.bin, in file order. Tensors are views of the mapped file when
// contiguous and aligned, copies otherwise. Errors name the file and what is wrong.
std::vector<std::pair<std::string, Tensor>> read_torch_state_dict(const std::string& path);

}  // namespace mmx
