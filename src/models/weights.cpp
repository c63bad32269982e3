#include "models/weights.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "core/log.hpp"
#include "core/thread_pool.hpp"

namespace mmx {

namespace {
bool is_half(DType d) { return d == DType::F16 || d == DType::BF16; }
}  // namespace

WeightLoader::WeightLoader(const Checkpoint& checkpoint, const Placement& placement, HalfWeights half)
    : placement_(placement), checkpoint_(&checkpoint), half_(half) {
  placement_.check();
}

std::unique_ptr<WeightLoader> WeightLoader::random(uint64_t seed, const Placement& placement, DType matrix_dtype) {
  if (matrix_dtype != DType::F32 && matrix_dtype != DType::F16 && matrix_dtype != DType::BF16)
    fail("random weights: matrix dtype must be F32, F16 or BF16, got ", dtype_name(matrix_dtype));
  placement.check();
  std::unique_ptr<WeightLoader> loader(new WeightLoader(placement));
  loader->rng_ = std::make_unique<std::mt19937_64>(seed);
  loader->random_matrix_dtype_ = matrix_dtype;
  return loader;
}

// transformers renames legacy TensorFlow-era keys on load (…LayerNorm.gamma → .weight, .beta → .bias);
// the real bert-base-uncased checkpoint still uses them.
std::string WeightLoader::resolve(const std::string& name) const {
  if (!checkpoint_ || checkpoint_->find(name)) return name;
  auto swap_suffix = [&](const std::string& from, const std::string& to) -> std::string {
    if (name.size() > from.size() && name.compare(name.size() - from.size(), from.size(), from) == 0) {
      std::string legacy = name.substr(0, name.size() - from.size()) + to;
      if (checkpoint_->find(legacy)) return legacy;
    }
    return {};
  };
  if (auto legacy = swap_suffix(".weight", ".gamma"); !legacy.empty()) return legacy;
  if (auto legacy = swap_suffix(".bias", ".beta"); !legacy.empty()) return legacy;
  return name;
}

bool WeightLoader::has(const std::string& name) const {
  return !checkpoint_ || checkpoint_->find(resolve(name)) != nullptr;
}

bool WeightLoader::has_prefix(const std::string& prefix) const {
  if (!checkpoint_) return false;
  for (const auto& n : checkpoint_->names())
    if (n.compare(0, prefix.size(), prefix) == 0) return true;
  return false;
}

Tensor WeightLoader::at_precision(const Tensor& t) const {
  const Tensor f32 = t.to(DType::F32);
  const DType d = placement_.weight_dtype();
  return d == DType::F32 || t.dtype() == d ? f32 : f32.to(d).to(DType::F32);
}

Tensor WeightLoader::get(const std::string& name, const Shape& shape, Init init) {
  const Tensor t = at_precision(stored(name, shape, init, false));
  return placement_.device.is_cpu() ? t : t.to(placement_.device);
}

Tensor WeightLoader::get_embedding(const std::string& name, const Shape& shape, Init init) {
  if (placement_.device.is_cpu()) return at_precision(stored(name, shape, init, false)).to(placement_.activation_dtype());
  // The stored half-precision tensor crosses the bus as it is and is converted there.
  const Tensor t = stored(name, shape, init, true);
  return (is_half(t.dtype()) ? t : t.to(DType::F32)).to(placement_.device).to(placement_.activation_dtype());
}

Tensor WeightLoader::get_host(const std::string& name, const Shape& shape, Init init) {
  return at_precision(stored(name, shape, init, false));
}

Tensor WeightLoader::get_matrix(const std::string& name, const Shape& shape) {
  const Tensor t = stored(name, shape, Init::Normal, true);
  if (!placement_.device.is_cpu())
    return (is_half(t.dtype()) ? t : t.to(DType::F32)).to(placement_.device).to(placement_.activation_dtype());
  const DType want = placement_.weight_dtype();
  if (want != DType::F32) return t.dtype() == want ? t : t.to(DType::F32).to(want);  // kept half; kernels widen it
  if (is_half(t.dtype()) && (half_ == HalfWeights::AsStored || !checkpoint_)) return t;
  return t.to(DType::F32);
}

Tensor WeightLoader::get_matrix_to_pack(const std::string& name, const Shape& shape) {
  const Tensor t = stored(name, shape, Init::Normal, true);
  return t.dtype() == DType::F64 ? t.to(DType::F32) : t;
}

Tensor WeightLoader::stored(const std::string& name, const Shape& shape, Init init, bool matrix) {
  if (!checkpoint_) {
    Tensor t = Tensor::empty(shape);
    float* p = t.data<float>();
    const int64_t n = t.numel();
    if (init != Init::Normal) {
      std::fill(p, p + n, init == Init::Ones ? 1.f : 0.f);
    } else {
      // Benchmarks need the scale of trained weights, not their law: the sum of four uniforms (close to
      // normal) with std 0.02, from a counter-based stream per 64 Ki-value chunk, so the 2.6 B values of
      // SDXL's UNet fill in seconds, in parallel, the same for any thread count.
      const uint64_t stream = (*rng_)();
      constexpr int64_t kChunk = 1 << 16;
      const float scale = 0.02f / std::sqrt(4.0f / 3.0f) / static_cast<float>(1u << 31);  // Var(U(−1,1)) = 1/3
      parallel_for((n + kChunk - 1) / kChunk, 1, [&](int64_t first, int64_t end) {
        for (int64_t chunk = first; chunk < end; ++chunk) {
          const int64_t c0 = chunk * kChunk;
          uint64_t state = stream ^ (0x9e3779b97f4a7c15ull * static_cast<uint64_t>(chunk + 1));
          auto next = [&state] {  // splitmix64
            uint64_t z = (state += 0x9e3779b97f4a7c15ull);
            z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
            z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
            return z ^ (z >> 31);
          };
          for (int64_t i = c0; i < std::min(n, c0 + kChunk); ++i) {
            const uint64_t a = next(), b = next();  // four signed 32-bit uniforms
            const double sum = double(int32_t(a)) + double(int32_t(a >> 32)) + double(int32_t(b)) + double(int32_t(b >> 32));
            p[i] = static_cast<float>(sum) * scale;
          }
        }
      });
    }
    if (matrix) t = t.to(random_matrix_dtype_);
    synthesised_.emplace_back(name, t);
    return t;
  }
  const std::string key = resolve(name);
  const TensorInfo* info = checkpoint_->find(key);
  if (!info) {
    missing_.push_back(name);
    return placeholder(shape);
  }
  used_.insert(key);
  if (info->shape != shape) {
    mismatched_.push_back(str(checkpoint_->file_of(key), ": tensor '", key, "': shape ", shape_str(info->shape),
                              ", config implies ", shape_str(shape)));
    return placeholder(shape);
  }
  if (!info->supported || (info->dtype != DType::F32 && info->dtype != DType::F16 && info->dtype != DType::BF16 &&
                           info->dtype != DType::F64)) {
    mismatched_.push_back(str(checkpoint_->file_of(key), ": tensor '", key, "': dtype ", info->dtype_name,
                              ", expected a floating-point dtype (F32, F16, BF16)"));
    return placeholder(shape);
  }
  return checkpoint_->get(key);
}

// Zeros in place of a tensor the checkpoint lacks, so loading goes on and reports every problem at once,
// as from_pretrained does. The shape comes from the config, not the file: a config that claims a width
// the checkpoint does not hold (hidden_size 64 000 beside 32-wide tensors) would otherwise cost gigabytes
// only to report a mismatch, so past a budget loading stops and reports what it found so far.
Tensor WeightLoader::placeholder(const Shape& shape) {
  constexpr int64_t kBudget = int64_t(64) << 20;
  int64_t elements = 1;
  for (const int64_t d : shape) elements = d > 0 && elements > kBudget / d ? kBudget + 1 : elements * std::max<int64_t>(d, 0);
  placeholder_bytes_ += std::min(elements, kBudget + 1) * int64_t(sizeof(float));
  if (placeholder_bytes_ > kBudget) report("the model its config describes", true);
  return Tensor::zeros(shape);
}

void WeightLoader::report(const std::string& model_name, bool stopped) const {
  constexpr size_t kListed = 32;
  std::ostringstream msg;
  msg << checkpoint_->source() << ": cannot load " << model_name << ":";
  if (!missing_.empty()) {
    msg << "\n  missing " << missing_.size() << " tensor(s)" << (stopped ? " so far" : "") << ":";
    for (size_t i = 0; i < missing_.size() && i < kListed; ++i) msg << "\n    " << missing_[i];
    if (missing_.size() > kListed) msg << "\n    ... and " << missing_.size() - kListed << " more";
  }
  for (size_t i = 0; i < mismatched_.size() && i < kListed; ++i) msg << "\n  " << mismatched_[i];
  if (mismatched_.size() > kListed) msg << "\n  ... and " << mismatched_.size() - kListed << " more mismatched";
  if (stopped)
    msg << "\n  (loading stopped here: the config's shapes need more than 64 MiB that the checkpoint does not hold)";
  throw Error(ErrorKind::Runtime, msg.str(),
              stopped ? "does config.json belong to these weights?" : "is this folder a " + model_name + " checkpoint?");
}

void WeightLoader::finish(const std::string& model_name, const std::vector<std::string>& ignorable_suffixes,
                          const std::vector<std::string>& head_prefixes) {
  if (!checkpoint_) return;
  if (!missing_.empty() || !mismatched_.empty()) report(model_name, false);
  auto ends_with = [](const std::string& n, const std::string& s) {
    return n.size() >= s.size() && n.compare(n.size() - s.size(), s.size(), s) == 0;
  };
  std::vector<std::string> heads, unused;
  for (const auto& n : checkpoint_->names()) {
    if (used_.count(n)) continue;
    bool ignorable = false, head = false;
    for (const auto& s : ignorable_suffixes) ignorable |= ends_with(n, s);
    for (const auto& p : head_prefixes) head |= n.compare(0, p.size(), p) == 0;
    if (!ignorable) (head ? heads : unused).push_back(n);
  }
  auto list = [&](const std::vector<std::string>& names, const char* why) {
    std::ostringstream msg;
    msg << names.size() << " tensor(s) of " << checkpoint_->source() << " are not used by " << model_name << why << ":";
    for (size_t i = 0; i < names.size() && i < 8; ++i) msg << ' ' << names[i];
    if (names.size() > 8) msg << " ...";
    return msg.str();
  };
  if (!heads.empty()) log_info(list(heads, " (heads of another task, as expected)"));
  if (!unused.empty()) log_warn(list(unused, ""));
}

}  // namespace mmx
