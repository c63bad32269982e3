// Reading LoRA files and merging them into weights (see lora.hpp). Module keys are resolved against the
// target models' own tensor names, not by rewriting strings: kohya's keys are the module path with '.'
// turned into '_' ("down_blocks_1_attentions_0_proj_in"), which is ambiguous to undo but exact to build,
// so every weight's flattened name is indexed and looked up. SGM names (kohya's SDXL trainer) are first
// mapped to diffusers' block numbering from the UNet's config.
#include "models/lora.hpp"

#include <algorithm>
#include <cmath>
#include <set>

#include "backend/ops.hpp"
#include "mmx/error.hpp"
#include "mmx/safetensors.hpp"
#include "models/unet2d_condition.hpp"

namespace mmx {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
bool starts_with(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

std::string flat(std::string s) {
  std::replace(s.begin(), s.end(), '.', '_');
  return s;
}

// Variants of low-rank adapters that are not W + up · down: refused by what they are.
void refuse_variants(const std::string& path, const std::string& key) {
  static const std::vector<std::pair<std::string, std::string>> kVariants = {
      {"dora_scale", "DoRA (weight-decomposed LoRA: dora_scale)"},
      {"lora_magnitude_vector", "DoRA (weight-decomposed LoRA: lora_magnitude_vector)"},
      {"hada_w", "LoHa (LyCORIS Hadamard product: hada_w*)"},
      {"lokr_w", "LoKr (LyCORIS Kronecker product: lokr_w*)"},
      {"lora_mid", "LoCon with a Tucker decomposition (lora_mid)"},
      {".on_input", "(IA)³ (LyCORIS ia3: on_input)"},
      {".w_norm", "a norm-layer adapter (LyCORIS w_norm)"},
  };
  for (const auto& [marker, what] : kVariants)
    if (key.find(marker) != std::string::npos)
      usage_error(path, ": '", key, "' belongs to ", what, "; mmx applies LoRA and LoCon adapters (down/up pairs) only");
  if (ends_with(key, ".diff") || ends_with(key, ".diff_b"))
    usage_error(path, ": '", key, "' belongs to a full weight difference (LyCORIS 'full': .diff); mmx applies LoRA and LoCon "
                "adapters (down/up pairs) only");
}

enum class Part { Down, Up, Alpha };

// The module key and part a tensor name stands for, in any of the formats read.
std::optional<std::pair<std::string, Part>> split_key(const std::string& name) {
  static const std::vector<std::pair<std::string, Part>> kSuffixes = {
      {".lora_down.weight", Part::Down},             {".lora_up.weight", Part::Up},               // kohya
      {".lora_A.weight", Part::Down},                {".lora_B.weight", Part::Up},                // PEFT
      {".lora_linear_layer.down.weight", Part::Down}, {".lora_linear_layer.up.weight", Part::Up},  // diffusers (mlp)
      {".lora.down.weight", Part::Down},             {".lora.up.weight", Part::Up},               // diffusers LoRACompatible
      {".down.weight", Part::Down},                  {".up.weight", Part::Up},  // diffusers attention processors (to_q_lora.down)
      {".alpha", Part::Alpha},
  };
  for (const auto& [suffix, part] : kSuffixes)
    if (ends_with(name, suffix) && name.size() > suffix.size()) return std::pair{name.substr(0, name.size() - suffix.size()), part};
  return std::nullopt;
}

float scalar_value(const Tensor& t, const std::string& path, const std::string& name) {
  if (t.numel() != 1) usage_error(path, ": '", name, "' holds ", t.numel(), " values; an alpha is one number");
  const float v = t.to(DType::F32).data<float>()[0];
  if (!std::isfinite(v) || v <= 0) usage_error(path, ": '", name, "' is ", v, "; an alpha is a positive number");
  return v;
}

// SGM (the original SDXL code's) block prefixes → diffusers', flattened, from the UNet's block layout.
std::map<std::string, std::string> sgm_prefixes(const UNet2DConditionConfig& c) {
  std::map<std::string, std::string> m = {{"input_blocks_0_0", "conv_in"},
                                          {"time_embed_0", "time_embedding_linear_1"},
                                          {"time_embed_2", "time_embedding_linear_2"},
                                          {"label_emb_0_0", "add_embedding_linear_1"},
                                          {"label_emb_0_2", "add_embedding_linear_2"},
                                          {"out_2", "conv_out"},
                                          {"middle_block_0", "mid_block_resnets_0"},
                                          {"middle_block_1", "mid_block_attentions_0"},
                                          {"middle_block_2", "mid_block_resnets_1"}};
  const size_t blocks = c.block_out_channels.size();
  int64_t in = 1;
  for (size_t i = 0; i < blocks; ++i) {
    const bool cross = starts_with(c.down_block_types[i], "CrossAttn");
    for (int64_t j = 0; j < c.layers_per_block[i]; ++j, ++in) {
      m[str("input_blocks_", in, "_0")] = str("down_blocks_", i, "_resnets_", j);
      if (cross) m[str("input_blocks_", in, "_1")] = str("down_blocks_", i, "_attentions_", j);
    }
    if (i + 1 < blocks) m[str("input_blocks_", in++, "_0")] = str("down_blocks_", i, "_downsamplers_0");
  }
  int64_t out = 0;
  for (size_t i = 0; i < blocks; ++i) {
    const bool cross = starts_with(c.up_block_types[i], "CrossAttn");
    const int64_t layers = c.layers_per_block[blocks - 1 - i] + 1;
    for (int64_t j = 0; j < layers; ++j, ++out) {
      m[str("output_blocks_", out, "_0")] = str("up_blocks_", i, "_resnets_", j);
      if (cross) m[str("output_blocks_", out, "_1")] = str("up_blocks_", i, "_attentions_", j);
      if (j + 1 == layers && i + 1 < blocks) m[str("output_blocks_", out, "_", cross ? 2 : 1)] = str("up_blocks_", i, "_upsamplers_0");
    }
  }
  return m;
}

// An SGM module name (flattened, after "lora_unet_") in diffusers' flattened names; "" when it is none.
std::string sgm_to_diffusers(const std::string& name, const std::map<std::string, std::string>& prefixes) {
  static const std::map<std::string, std::string> kResnet = {
      {"in_layers_2", "conv1"}, {"out_layers_3", "conv2"}, {"emb_layers_1", "time_emb_proj"}, {"skip_connection", "conv_shortcut"}};
  for (auto it = prefixes.rbegin(); it != prefixes.rend(); ++it) {
    const std::string& p = it->first;
    if (name == p) return it->second;
    if (!starts_with(name, p + "_")) continue;
    std::string rest = name.substr(p.size() + 1);
    if (it->second.find("_resnets_") != std::string::npos) {
      if (auto r = kResnet.find(rest); r != kResnet.end()) rest = r->second;
    } else if (it->second.find("samplers_") != std::string::npos && rest == "op") {
      rest = "conv";
    }
    return it->second + "_" + rest;
  }
  return "";
}

// One target's linear and convolution weights: by module path and by flattened path.
struct TargetIndex {
  const LoraTarget* target;
  std::set<std::string> modules;
  std::map<std::string, std::string> by_flat;  // "" value: two modules flatten alike
  std::map<std::string, std::string> sgm;
};

TargetIndex index_target(const LoraTarget& t) {
  TargetIndex ix{&t, {}, {}, {}};
  for (const std::string& name : t.checkpoint->names()) {
    if (!ends_with(name, ".weight")) continue;
    const TensorInfo* info = t.checkpoint->find(name);
    if (!info || (info->shape.size() != 2 && info->shape.size() != 4)) continue;
    const std::string module = name.substr(0, name.size() - 7);
    ix.modules.insert(module);
    auto [it, fresh] = ix.by_flat.emplace(flat(module), module);
    if (!fresh) it->second.clear();
  }
  if (t.unet) ix.sgm = sgm_prefixes(*t.unet);
  return ix;
}

struct Resolved {
  const TargetIndex* target = nullptr;
  std::string module;
};

// Where a pair's key lands, or nothing.
Resolved resolve(const std::string& key, const std::vector<TargetIndex>& targets) {
  auto find = [&](const std::string& component) -> const TargetIndex* {
    for (const auto& t : targets)
      if (t.target->component == component) return &t;
    return nullptr;
  };
  static const std::vector<std::pair<std::string, std::string>> kKohya = {
      {"lora_unet_", "unet"}, {"lora_te1_", "text_encoder"}, {"lora_te2_", "text_encoder_2"}, {"lora_te_", "text_encoder"}};
  for (const auto& [prefix, component] : kKohya) {
    if (!starts_with(key, prefix)) continue;
    const TargetIndex* t = find(component);
    if (!t) return {};
    std::string name = key.substr(prefix.size());
    if (!t->sgm.empty())
      if (std::string d = sgm_to_diffusers(name, t->sgm); !d.empty()) name = d;
    const auto it = t->by_flat.find(name);
    return it == t->by_flat.end() || it->second.empty() ? Resolved{} : Resolved{t, it->second};
  }
  // Dotted names: "<component>.<module path>", or a UNet's module path alone (diffusers' older files).
  std::string component = "unet", module = key;
  for (const std::string c : {"unet", "text_encoder", "text_encoder_2"})
    if (starts_with(key, c + ".")) component = c, module = key.substr(c.size() + 1);
  const TargetIndex* t = find(component);
  if (!t) return {};
  for (size_t at; (at = module.find(".processor")) != std::string::npos;) module.erase(at, 10);
  if (ends_with(module, "_lora")) {  // attention processors: to_q_lora, ..., to_out_lora
    module.resize(module.size() - 5);
    const bool text = component != "unet";
    static const std::map<std::string, std::pair<std::string, std::string>> kProcessor = {
        {"to_q", {"to_q", "q_proj"}}, {"to_k", {"to_k", "k_proj"}}, {"to_v", {"to_v", "v_proj"}}, {"to_out", {"to_out.0", "out_proj"}}};
    const size_t dot = module.rfind('.');
    const std::string leaf = module.substr(dot + 1);
    if (auto p = kProcessor.find(leaf); p != kProcessor.end())
      module = module.substr(0, dot + 1) + (text ? p->second.second : p->second.first);
  }
  return t->modules.count(module) ? Resolved{t, module} : Resolved{};
}

// W + scale · up · down as the weight's shape, in f32: [out, r] · [r, K] on the backend's GEMM with W as its
// residual (one pass over W; `down` transposed because linear computes x · Wᵀ; the scale folded into the
// r-wide `up`, the cheap side).
Tensor add_low_rank(const Tensor& w, const Tensor& stored_up, const Tensor& stored_down, float scale) {
  const Tensor up = stored_up.to(DType::F32), down = stored_down.to(DType::F32);
  const int64_t out = up.dim(0), r = down.dim(0), k = down.numel() / r;
  Tensor down_t = Tensor::empty({k, r}), scaled_up = Tensor::empty({out, r});
  const float* d = down.data<float>();
  for (int64_t j = 0; j < k; ++j)
    for (int64_t i = 0; i < r; ++i) down_t.data<float>()[j * r + i] = d[i * k + j];
  for (int64_t i = 0; i < out * r; ++i) scaled_up.data<float>()[i] = scale * up.data<float>()[i];
  ops::LinearFusion fusion;
  fusion.residual = w.reshape({out, k});
  return ops::linear(scaled_up, down_t, ops::PackedWeight(), Tensor(), fusion).reshape(w.shape());
}

}  // namespace

std::shared_ptr<const LoraFile> LoraFile::open(const std::string& path) {
  const SafetensorsFile file = SafetensorsFile::open(path);
  auto lora = std::make_shared<LoraFile>();
  lora->path_ = path;
  std::map<std::string, Pair> pairs;
  std::vector<std::string> unknown;
  for (const TensorInfo& info : file.tensors()) {
    const std::string& name = info.name;
    refuse_variants(path, name);
    const auto split = split_key(name);
    if (!split) {
      unknown.push_back(name);
      continue;
    }
    if (!info.supported || (info.dtype != DType::F32 && info.dtype != DType::F16 && info.dtype != DType::BF16 && info.dtype != DType::F64))
      usage_error(path, ": '", name, "' has dtype ", info.dtype_name, "; LoRA weights are floating point");
    Pair& p = pairs[split->first];
    p.key = split->first;
    const Tensor t = file.get(name);
    switch (split->second) {  // as stored (a view of the mapping where aligned); widened when merged
      case Part::Down: p.down = t; break;
      case Part::Up: p.up = t; break;
      case Part::Alpha: p.alpha = scalar_value(t, path, name); break;
    }
  }
  if (!unknown.empty()) {
    std::string list;
    for (size_t i = 0; i < unknown.size() && i < 8; ++i) list += "\n  " + unknown[i];
    if (unknown.size() > 8) list += str("\n  ... and ", unknown.size() - 8, " more");
    usage_error(path, ": ", unknown.size(), " tensor(s) are no LoRA down/up/alpha weights", unknown.size() == file.tensors().size() ?
                " (is this a model checkpoint rather than an adapter?)" : "", ":", list);
  }
  if (pairs.empty()) usage_error(path, ": the file holds no LoRA weights");
  for (auto& [key, p] : pairs) {
    if (!p.down.defined() || !p.up.defined())
      usage_error(path, ": module '", key, "' has a ", p.down.defined() ? "down" : "up", " weight without its ",
                  p.down.defined() ? "up" : "down", " weight");
    const bool conv = p.down.ndim() == 4;
    if ((p.down.ndim() != 2 && !conv) || p.up.ndim() != p.down.ndim() || p.up.dim(1) != p.down.dim(0) ||
        (conv && (p.up.dim(2) != 1 || p.up.dim(3) != 1)))
      usage_error(path, ": module '", key, "': down ", shape_str(p.down.shape()), " and up ", shape_str(p.up.shape()),
                  " are no low-rank pair (down [r, in] / [r, in, kh, kw], up [out, r] / [out, r, 1, 1])");
    lora->pairs_.push_back(std::move(p));
  }
  return lora;
}

std::map<std::string, std::map<std::string, Tensor>> merge_loras(const std::vector<LoraTarget>& targets,
                                                                 const std::vector<WeightedLora>& adapters) {
  std::vector<TargetIndex> index;
  for (const auto& t : targets) index.push_back(index_target(t));
  struct Term {
    const LoraFile::Pair* pair;
    float scale;
  };
  std::map<std::pair<const TargetIndex*, std::string>, std::vector<Term>> terms;  // ordered: deterministic merges
  std::vector<std::string> problems;
  for (const WeightedLora& a : adapters) {
    std::set<std::string> seen;
    for (const LoraFile::Pair& p : a.file->pairs()) {
      const Resolved r = resolve(p.key, index);
      if (!r.target) {
        problems.push_back(str(a.file->path(), ": '", p.key, "' matches no linear or convolution weight of the pipeline"));
        continue;
      }
      const std::string weight = r.module + ".weight";
      const Shape& w = r.target->target->checkpoint->find(weight)->shape;
      const int64_t k = shape_numel(w) / w[0];
      // A convolution's pair has its kernel (a 1×1 pair may also stand for a linear weight, as kohya writes proj_in).
      const bool kernel_ok = w.size() != 4 || p.down.ndim() != 4 || (p.down.dim(2) == w[2] && p.down.dim(3) == w[3]);
      if (p.up.dim(0) != w[0] || p.down.numel() / p.rank() != k || !kernel_ok) {
        problems.push_back(str(a.file->path(), ": '", p.key, "': down ", shape_str(p.down.shape()), " · up ",
                               shape_str(p.up.shape()), " does not fit ", r.target->target->component, ".", weight, " ", shape_str(w)));
        continue;
      }
      if (!seen.insert(r.target->target->component + "." + r.module).second) {
        problems.push_back(str(a.file->path(), ": '", p.key, "' is a second pair for ", r.target->target->component, ".", r.module));
        continue;
      }
      const float alpha = p.alpha.value_or(static_cast<float>(p.rank()));
      terms[{r.target, weight}].push_back({&p, static_cast<float>(a.weight * (double(alpha) / double(p.rank())))});
    }
  }
  if (!problems.empty()) {
    std::string list;
    for (size_t i = 0; i < problems.size() && i < 16; ++i) list += "\n  " + problems[i];
    if (problems.size() > 16) list += str("\n  ... and ", problems.size() - 16, " more");
    throw Error(ErrorKind::Usage, str(problems.size(), " LoRA module(s) cannot be applied:", list),
                "is the adapter made for this model (SDXL base, its UNet and text encoders)?");
  }
  std::map<std::string, std::map<std::string, Tensor>> merged;
  for (const auto& [where, list] : terms) {
    const Checkpoint& c = *where.first->target->checkpoint;
    const Tensor stored = c.get(where.second);
    Tensor w = stored.to(DType::F32);  // F32: the mapping itself, read as the first residual
    for (const Term& t : list) w = add_low_rank(w, t.pair->up, t.pair->down, t.scale);
    merged[where.first->target->component][where.second] = stored.dtype() == DType::F32 ? w : w.to(stored.dtype());
    c.release(where.second);  // the stored values are not read again: their pages leave this process
  }
  return merged;
}

}  // namespace mmx
