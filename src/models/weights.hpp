// Binding checkpoint tensors to modules by their Hugging Face state-dict names. Like
// from_pretrained, a load collects every missing, mis-shaped and unexpected key, and reports
// them together when the model is complete, not one at a time.
#pragma once
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "io/checkpoint.hpp"
#include "io/json_config.hpp"
#include "mmx/placement.hpp"

namespace mmx {

enum class Init { Normal, Ones, Zeros };  // how a random-weight model (benchmarks) fills a tensor

// What get_matrix does with F16/BF16 linear and convolution weights. Widen: convert to F32 once, at load
// (the small models: BERT, ViT, CLIP run small batches, where widening on every forward would cost about
// as much as the forward). AsStored: keep them in the file's mapping and let the kernels widen panels as
// they go (SDXL: halves the resident size; the UNet does thousands of FLOPs per weight per step).
enum class HalfWeights { Widen, AsStored };

class WeightLoader {
 public:
  // Binds the checkpoint's tensors for a model placed at `placement`: on its device, every weight at
  // its precision (rounded as model.to(dtype) rounds).
  WeightLoader(const Checkpoint& checkpoint, const Placement& placement, HalfWeights half = HalfWeights::Widen);
  // No file: every requested tensor is synthesised (≈ N(0, 0.02), or ones/zeros for norms); matrices
  // (get_matrix) are stored as `matrix_dtype`, as an fp16 checkpoint would hold them.
  static std::unique_ptr<WeightLoader> random(uint64_t seed, const Placement& placement = {},
                                              DType matrix_dtype = DType::F32);

  bool has(const std::string& name) const;
  bool has_prefix(const std::string& prefix) const;  // any tensor name starts with it
  // Where the tensors handed out go.
  const Placement& placement() const { return placement_; }
  // A parameter read by the kernels beside the activations (norm scales, biases): F32 (F16/BF16
  // converted once, here; F32 used in place from the mapping), on the placement's device.
  Tensor get(const std::string& name, const Shape& shape, Init init = Init::Normal);
  // A tensor that becomes activations (embedding tables, class tokens, position embeddings): in the
  // placement's activation dtype, on its device.
  Tensor get_embedding(const std::string& name, const Shape& shape, Init init = Init::Normal);
  // A linear or convolution weight. On the CPU at an F32 placement: F32 in place, F16/BF16 as
  // HalfWeights says, F64 converted; at an F16/BF16 placement in that dtype (the kernels widen it).
  // On other devices uploaded once and converted there to the activation dtype.
  Tensor get_matrix(const std::string& name, const Shape& shape);
  // A linear weight that a low-precision GEMM packs (CPU at BF16 or I8): as the file holds it (F32, F16 or
  // BF16, mapped, F64 converted), not rounded or copied here; the packing rounds it (bf16) or quantizes it
  // (int8) on first use, so a tower never used is never converted.
  Tensor get_matrix_to_pack(const std::string& name, const Shape& shape);
  // F32 in host memory whatever the placement (values the model reads itself, such as logit_scale).
  Tensor get_host(const std::string& name, const Shape& shape, Init init = Init::Normal);

  // Random mode: every tensor handed out so far, by name, in request order (to save as a checkpoint).
  const std::vector<std::pair<std::string, Tensor>>& synthesised() const { return synthesised_; }

  // Call when the model is built: fails listing all missing and mis-shaped tensors. Unused tensors
  // are ignored, as transformers ignores them, and named in a warning; those under `head_prefixes`
  // (another task's heads, e.g. "cls." of BertForPreTraining) only at info level, and those ending in
  // `ignorable_suffixes` (buffers such as position_ids) not at all.
  void finish(const std::string& model_name, const std::vector<std::string>& ignorable_suffixes = {},
              const std::vector<std::string>& head_prefixes = {});

 private:
  explicit WeightLoader(const Placement& placement) : placement_(placement) {}
  std::string resolve(const std::string& name) const;  // legacy LayerNorm.gamma/.beta names
  // The tensor as stored (zero-copy from the mapping where it can be), or synthesised: F32, F16, BF16
  // or F64. Synthesised matrices (`matrix`) come in the random loader's matrix dtype.
  Tensor stored(const std::string& name, const Shape& shape, Init init, bool matrix);
  Tensor placeholder(const Shape& shape);                     // zeros for a missing tensor, within a budget
  [[noreturn]] void report(const std::string& model_name, bool stopped) const;  // every problem found
  // F32 host values of a weight at the placement's precision (rounded through its dtype).
  Tensor at_precision(const Tensor& t) const;
  Placement placement_;
  DType random_matrix_dtype_ = DType::F32;
  std::vector<std::pair<std::string, Tensor>> synthesised_;
  const Checkpoint* checkpoint_ = nullptr;
  HalfWeights half_ = HalfWeights::Widen;
  std::unique_ptr<std::mt19937_64> rng_;
  std::set<std::string> used_;
  std::vector<std::string> missing_, mismatched_;
  int64_t placeholder_bytes_ = 0;
};

// A module's view of the weights: its dotted prefix ("encoder.layer.3.attention.self.").
class WeightView {
 public:
  WeightView(WeightLoader& loader, std::string prefix = "") : loader_(&loader), prefix_(std::move(prefix)) {}
  WeightView sub(const std::string& name) const { return WeightView(*loader_, prefix_ + name + "."); }
  WeightView sub(const std::string& name, int64_t index) const {
    return WeightView(*loader_, prefix_ + name + "." + std::to_string(index) + ".");
  }
  Tensor get(const std::string& name, const Shape& shape, Init init = Init::Normal) const {
    return loader_->get(prefix_ + name, shape, init);
  }
  Tensor get_matrix(const std::string& name, const Shape& shape) const { return loader_->get_matrix(prefix_ + name, shape); }
  Tensor get_matrix_to_pack(const std::string& name, const Shape& shape) const {
    return loader_->get_matrix_to_pack(prefix_ + name, shape);
  }
  Tensor get_embedding(const std::string& name, const Shape& shape, Init init = Init::Normal) const {
    return loader_->get_embedding(prefix_ + name, shape, init);
  }
  Tensor get_host(const std::string& name, const Shape& shape, Init init = Init::Normal) const {
    return loader_->get_host(prefix_ + name, shape, init);
  }
  const Placement& placement() const { return loader_->placement(); }
  bool has(const std::string& name) const { return loader_->has(prefix_ + name); }
  const std::string& prefix() const { return prefix_; }

 private:
  WeightLoader* loader_;
  std::string prefix_;
};

// A model bound to a checkpoint's tensors (missing and mis-shaped ones reported together on failure).
template <class Model, class Config>
Model load_model(const Config& config, const Checkpoint& checkpoint, const Placement& placement,
                 HalfWeights half = HalfWeights::Widen) {
  WeightLoader loader(checkpoint, placement, half);
  return Model(config, loader);
}

// The registry's factory of a model file (models/registry.cpp): the config parsed from config.json, the
// model's parts bound to the checkpoint at the placement.
template <class Parts, class Config>
std::unique_ptr<Parts> load_parts(const JsonObject& json, const Checkpoint& checkpoint, const Placement& placement,
                                  HalfWeights half) {
  const Config config = Config::from_json(json);
  WeightLoader loader(checkpoint, placement, half);
  return std::make_unique<Parts>(config, loader);
}

}  // namespace mmx
