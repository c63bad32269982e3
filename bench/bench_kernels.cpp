// Kernel micro-benchmarks on the lab models' shapes; counters report GFLOP/s (or GB/s for
// bandwidth-bound ops). Threads follow OMP_NUM_THREADS / all cores.
#include <benchmark/benchmark.h>

#include <random>

#include "backend/ops.hpp"
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

// nn.Linear: x[M, K] · w[N, K]ᵀ + b
void BM_Linear(benchmark::State& state) {
  const int64_t m = state.range(0), n = state.range(1), k = state.range(2);
  const Tensor x = random_tensor({m, k}), w = random_tensor({n, k}), b = random_tensor({n});
  for (auto _ : state) benchmark::DoNotOptimize(ops::linear(x, w, b));
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * m * n * k, benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1000);
  state.counters["threads"] = num_threads();
}
// bert-lab (8·7 tokens), bert 32×128 and vit-base ×4 (788 tokens) projections and MLPs.
BENCHMARK(BM_Linear)
    ->Args({56, 768, 768})->Args({56, 3072, 768})->Args({56, 768, 3072})
    ->Args({4096, 768, 768})->Args({4096, 3072, 768})->Args({4096, 768, 3072})
    ->Args({788, 3072, 768})->Args({1576, 768, 3072})
    ->Unit(benchmark::kMillisecond)->UseRealTime();

// Attention: [B, T, heads·64] with a padding mask on half the batch.
void BM_Attention(benchmark::State& state) {
  const int64_t b = state.range(0), t = state.range(1), heads = 12, d = 64;
  const Tensor q = random_tensor({b, t, heads * d}), k = random_tensor({b, t, heads * d}), v = random_tensor({b, t, heads * d});
  std::vector<int64_t> mask(static_cast<size_t>(b * t), 1);
  for (int64_t i = 0; i < b; i += 2)
    for (int64_t j = t / 2; j < t; ++j) mask[static_cast<size_t>(i * t + j)] = 0;
  const Tensor m = Tensor::from_vector(mask, {b, t});
  for (auto _ : state) benchmark::DoNotOptimize(ops::attention(q, k, v, heads, m, false));
  state.counters["GFLOP/s"] = benchmark::Counter(4.0 * b * t * t * heads * d, benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1000);
}
BENCHMARK(BM_Attention)->Args({8, 7})->Args({32, 128})->Args({4, 197})->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_LayerNorm(benchmark::State& state) {
  const int64_t rows = state.range(0), c = state.range(1);
  const Tensor x = random_tensor({rows, c}), w = random_tensor({c}), b = random_tensor({c});
  for (auto _ : state) benchmark::DoNotOptimize(ops::layer_norm(x, w, b, 1e-12f));
  state.counters["GB/s"] = benchmark::Counter(8.0 * rows * c, benchmark::Counter::kIsIterationInvariantRate,
                                              benchmark::Counter::kIs1000);
}
BENCHMARK(BM_LayerNorm)->Args({4096, 768})->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_GeluErf(benchmark::State& state) {
  Tensor x = random_tensor({state.range(0), 3072});
  for (auto _ : state) ops::activation_(x, ops::Activation::GeluErf);
  state.counters["GB/s"] = benchmark::Counter(8.0 * x.numel(), benchmark::Counter::kIsIterationInvariantRate,
                                              benchmark::Counter::kIs1000);
}
BENCHMARK(BM_GeluErf)->Arg(4096)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
