#include "backend/backend.hpp"

#include <algorithm>

namespace mmx {

const char* op_name(Op op) {
  switch (op) {
    case Op::Gemm: return "gemm";
    case Op::Linear: return "linear";
    case Op::PackLinearWeight: return "pack_linear_weight";
    case Op::LayerNorm: return "layer_norm";
    case Op::Activation: return "activation";
    case Op::Softmax: return "softmax";
    case Op::Add: return "add";
    case Op::Embedding: return "embedding";
    case Op::Attention: return "attention";
    case Op::Conv2d: return "conv2d";
    case Op::GroupNorm: return "group_norm";
    case Op::UpsampleNearest2x: return "upsample";
    case Op::PadBottomRight: return "pad";
    case Op::Transpose12: return "transpose12";
    case Op::AddChannelBias: return "add_channel_bias";
    case Op::Concat1: return "concat";
    case Op::Geglu: return "geglu";
    case Op::SelectTokens: return "select_tokens";
    case Op::Patchify: return "patchify";
    case Op::TorchRandn: return "torch_randn";
    case Op::Record: return "record";
  }
  return "?";
}

namespace {
bool in_table(const OpTable& t, Op op) {
  switch (op) {
    case Op::Gemm: return t.gemm;
    case Op::Linear: return t.linear;
    case Op::PackLinearWeight: return t.pack_linear_weight;
    case Op::LayerNorm: return t.layer_norm;
    case Op::Activation: return t.activation;
    case Op::Softmax: return t.softmax;
    case Op::Add: return t.add;
    case Op::Embedding: return t.embedding;
    case Op::Attention: return t.attention;
    case Op::Conv2d: return t.conv2d;
    case Op::GroupNorm: return t.group_norm;
    case Op::UpsampleNearest2x: return t.upsample_nearest2x;
    case Op::PadBottomRight: return t.pad_bottom_right;
    case Op::Transpose12: return t.transpose12;
    case Op::AddChannelBias: return t.add_channel_bias;
    case Op::Concat1: return t.concat1;
    case Op::Geglu: return t.geglu;
    case Op::SelectTokens: return t.select_tokens;
    case Op::Patchify: return t.patchify;
    case Op::TorchRandn: return t.torch_randn;
    case Op::Record: return t.record && t.replay && t.release_recording;
  }
  return false;
}
}  // namespace

bool Backend::supports(Op op, std::initializer_list<DType> dtypes) const {
  if (!in_table(ops_, op)) return false;
  if (dtypes.size() == 0) return true;
  const std::vector<DType>& computes = activation_dtypes();
  const DType first = *dtypes.begin();
  if (std::find(computes.begin(), computes.end(), first) == computes.end()) return false;
  return std::all_of(dtypes.begin(), dtypes.end(), [first](DType d) { return d == first; });
}

}  // namespace mmx
