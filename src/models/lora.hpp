// LoRA adapters merged into a model's weights at load: the two published SDXL key formats
// (kohya / webui `lora_unet_*`, `lora_te1_*`, `lora_te2_*` with `.lora_down/.lora_up/.alpha`, in diffusers'
// or SGM's `input_blocks/middle_block/output_blocks` names; diffusers / PEFT `unet.*.lora_A/lora_B`,
// `text_encoder.*`, `text_encoder_2.*`, and diffusers' older `_lora.down`/`.lora.down` names), linear and
// LoCon convolution pairs. W' = W + Σ weight · (alpha / rank) · up · down, in f32, rounded once to the
// weight's stored dtype: a merged model runs at exactly the base model's speed, and only the modules an
// adapter touches get new memory (the rest stay in the file's mapping).
#pragma once
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "io/checkpoint.hpp"
#include "mmx/tensor.hpp"

namespace mmx {

struct UNet2DConditionConfig;

// One adapter file: its low-rank pairs by module key as written in the file.
class LoraFile {
 public:
  struct Pair {
    std::string key;        // the module's key in the file ("lora_unet_input_blocks_4_1_proj_in", "unet.mid_block...")
    Tensor down, up;        // as stored (F32/F16/BF16/F64): [rank, in(, kh, kw)] and [out, rank(, 1, 1)]
    std::optional<float> alpha;  // none: alpha = rank (scale 1), as PEFT without network alphas
    int64_t rank() const { return down.dim(0); }
  };
  // Reads and checks every key: a variant mmx does not apply (DoRA, LoHa, LoKr, Tucker LoCon, full
  // differences, biases) is refused by name; an unknown key or an unpaired down/up is an error.
  static std::shared_ptr<const LoraFile> open(const std::string& path);
  const std::string& path() const { return path_; }
  const std::vector<Pair>& pairs() const { return pairs_; }

 private:
  std::string path_;
  std::vector<Pair> pairs_;
};

// A model an adapter may change: its name in the pipeline ("unet", "text_encoder", "text_encoder_2"), its
// weights, and for the UNet its config (SGM block numbers depend on layers_per_block).
struct LoraTarget {
  std::string component;
  const Checkpoint* checkpoint = nullptr;
  const UNet2DConditionConfig* unet = nullptr;
};

struct WeightedLora {
  std::shared_ptr<const LoraFile> file;
  double weight = 1.0;
};

// The merged weights, component → (tensor name → tensor in the stored dtype). Every pair of every adapter
// must land on one linear or convolution weight of one target with matching shapes; those that do not are
// listed together in one error.
std::map<std::string, std::map<std::string, Tensor>> merge_loras(const std::vector<LoraTarget>& targets,
                                                                 const std::vector<WeightedLora>& adapters);

}  // namespace mmx
