// Kernel micro-benchmarks on the lab models' shapes; counters report GFLOP/s (or GB/s for
// bandwidth-bound ops). Threads follow OMP_NUM_THREADS / all cores.
#include <benchmark/benchmark.h>

#include <immintrin.h>

#include <algorithm>
#include <random>

#include "backend/ops.hpp"
#include "bench/fma_peak.hpp"
#include "mmx/runtime.hpp"

using namespace mmx;

namespace {

Tensor random_tensor(Shape shape) {
  std::mt19937 rng(1);
  std::normal_distribution<float> dist(0.f, 1.f);
  Tensor t = Tensor::empty(std::move(shape));
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = dist(rng);
  return t;
}

// nn.Linear: x[M, K] · w[N, K]ᵀ + b, the weight packed once as the models hold it (range 3 = 0), or kept
// as stored f16 and widened while packing per call (range 3 = 1, SDXL's mapped weights).
void BM_Linear(benchmark::State& state) {
  const int64_t m = state.range(0), n = state.range(1), k = state.range(2);
  const bool half = state.range(3) != 0;
  const Tensor x = random_tensor({m, k}), w = random_tensor({n, k}), b = random_tensor({n});
  const Tensor stored = half ? w.to(DType::F16) : w;
  const ops::PackedWeight packed = half ? ops::PackedWeight() : ops::pack_linear_weight(w);
  for (auto _ : state) benchmark::DoNotOptimize(ops::linear(x, stored, packed, b, ops::LinearFusion()));
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * m * n * k, benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1000);
  state.counters["threads"] = num_threads();
}
// bert-lab (8·7 tokens), bert 32×128 and vit-base ×4 (788 tokens) projections and MLPs; SDXL UNet at 512²
// with CFG (2 × 4096 tokens of 640 channels, 2 × 1024 of 1280) from f16 weights.
BENCHMARK(BM_Linear)
    ->Args({56, 768, 768, 0})->Args({56, 3072, 768, 0})->Args({56, 768, 3072, 0})
    ->Args({4096, 768, 768, 0})->Args({4096, 3072, 768, 0})->Args({4096, 768, 3072, 0})
    ->Args({788, 3072, 768, 0})->Args({1576, 768, 3072, 0})
    ->Args({8192, 640, 640, 1})->Args({8192, 5120, 640, 1})->Args({2048, 1280, 5120, 1})
    ->Unit(benchmark::kMillisecond)->UseRealTime();

// Attention: [B, T, heads·64] with a padding mask on half the batch (SDXL's self-attention: no mask).
void BM_Attention(benchmark::State& state) {
  const int64_t b = state.range(0), t = state.range(1), heads = state.range(2), d = 64;
  const Tensor q = random_tensor({b, t, heads * d}), k = random_tensor({b, t, heads * d}), v = random_tensor({b, t, heads * d});
  std::vector<int64_t> mask(static_cast<size_t>(b * t), 1);
  for (int64_t i = 0; i < b; i += 2)
    for (int64_t j = t / 2; j < t; ++j) mask[static_cast<size_t>(i * t + j)] = 0;
  const Tensor m = heads == 10 ? Tensor() : Tensor::from_vector(mask, {b, t});
  for (auto _ : state) benchmark::DoNotOptimize(ops::attention(q, k, v, heads, m, false));
  state.counters["GFLOP/s"] = benchmark::Counter(4.0 * b * t * t * heads * d, benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1000);
}
BENCHMARK(BM_Attention)
    ->Args({8, 7, 12})->Args({32, 128, 12})->Args({4, 197, 12})->Args({2, 4096, 10})
    ->Unit(benchmark::kMillisecond)->UseRealTime();

// 3×3 convolution, padding 1, f16 weights as SDXL stores them: [N, C, H, W] → [N, O, H, W].
void BM_Conv3x3(benchmark::State& state) {
  const int64_t n = state.range(0), c = state.range(1), hw = state.range(2), o = state.range(3);
  const Tensor x = random_tensor({n, c, hw, hw}), w = random_tensor({o, c, 3, 3}).to(DType::F16), b = random_tensor({o});
  for (auto _ : state) benchmark::DoNotOptimize(ops::conv2d(x, w, b, 1, 1));
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * n * o * hw * hw * c * 9, benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1000);
}
// UNet 512² (CFG batch 2) level 0 and 2; VAE decoder's 512² layer.
BENCHMARK(BM_Conv3x3)->Args({2, 320, 64, 320})->Args({2, 1280, 16, 1280})->Args({1, 128, 512, 128})
    ->Unit(benchmark::kMillisecond)->UseRealTime();

// GroupNorm (32 groups) with SiLU fused, as every ResNet block runs it.
void BM_GroupNormSilu(benchmark::State& state) {
  const int64_t c = state.range(0), hw = state.range(1);
  const Tensor x = random_tensor({2, c, hw, hw}), w = random_tensor({c}), b = random_tensor({c});
  for (auto _ : state) benchmark::DoNotOptimize(ops::group_norm(x, 32, w, b, 1e-5f, ops::Activation::Silu));
  state.counters["GB/s"] = benchmark::Counter(8.0 * x.numel(), benchmark::Counter::kIsIterationInvariantRate,
                                              benchmark::Counter::kIs1000);
}
BENCHMARK(BM_GroupNormSilu)->Args({320, 64})->Args({1280, 16})->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_LayerNorm(benchmark::State& state) {
  const int64_t rows = state.range(0), c = state.range(1);
  const Tensor x = random_tensor({rows, c}), w = random_tensor({c}), b = random_tensor({c});
  for (auto _ : state) benchmark::DoNotOptimize(ops::layer_norm(x, w, b, 1e-12f));
  state.counters["GB/s"] = benchmark::Counter(8.0 * rows * c, benchmark::Counter::kIsIterationInvariantRate,
                                              benchmark::Counter::kIs1000);
}
BENCHMARK(BM_LayerNorm)->Args({4096, 768})->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_GeluErf(benchmark::State& state) {
  // A fresh copy each iteration: applied in place again and again, GELU drives values into denormals.
  const Tensor source = random_tensor({state.range(0), 3072});
  Tensor x = source.clone();
  for (auto _ : state) {
    state.PauseTiming();
    std::copy_n(source.data<float>(), source.numel(), x.data<float>());
    state.ResumeTiming();
    ops::activation_(x, ops::Activation::GeluErf);
  }
  state.counters["GB/s"] = benchmark::Counter(8.0 * x.numel(), benchmark::Counter::kIsIterationInvariantRate,
                                              benchmark::Counter::kIs1000);
}
BENCHMARK(BM_GeluErf)->Arg(4096)->Unit(benchmark::kMillisecond)->UseRealTime();

// The machine's measured FMA peak (src/bench/fma_peak.cpp), the ceiling the GEMM numbers are read against.
void BM_FmaPeak(benchmark::State& state) {
  const bool avx512 = state.range(0) == 512;
  if (avx512 ? !__builtin_cpu_supports("avx512f") : !__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
    state.SkipWithError("this CPU lacks the ISA");
    return;
  }
  double gflops = 0;
  for (auto _ : state) gflops = mmx::measure_fma_peak_gflops(num_threads(), avx512 ? 512 : 256);
  state.counters["GFLOP/s"] = gflops;
  state.counters["threads"] = num_threads();
}
BENCHMARK(BM_FmaPeak)->Arg(512)->Arg(256)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
