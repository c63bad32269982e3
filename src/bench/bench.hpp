// Workload benchmarks (src/bench/bench.cpp): full-size architectures from their real configs with random
// weights, timed whole.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "mmx/placement.hpp"
#include "mmx/tensor.hpp"

namespace mmx {

struct BenchResult {
  std::string workload;
  int runs = 0;
  double min_ms = 0, median_ms = 0;
  double gflops = 0;         // model FLOPs (2·M·N·K per GEMM) / median time
  double peak_gflops = 0;    // this machine's measured FMA peak at `threads` (bench/fma_peak.hpp)
  double peak_fraction = 0;  // gflops / peak_gflops
  std::string unit;          // what peak_gflops was measured on: "fp32 FMA", "amx-bf16", "avx512-vnni", ...
  double peak_rss_mb = 0;    // of the whole process so far
  int threads = 0;
  std::string device = "cpu";  // "cpu", or "cuda f16 (NVIDIA H100 ...)"
  int64_t items = 0;           // sequences or images per run (0: not a batch workload)
  double items_per_s = 0;      // items / median
  double peak_device_mb = 0;   // GPU memory the allocator held at most (CUDA only)
  std::string detail;        // shapes, for the human-readable report
};

// A collection's search over n synthetic 512-wide vectors: exact, or through an HNSW graph (bench_search.cpp).
BenchResult bench_search(const std::string& workload, int runs, int64_t n, bool hnsw, bool clustered);

// Names accepted by run_benchmark, with a line of help each.
std::vector<std::pair<std::string, std::string>> bench_workloads();

// data_dir holds real-configs/ and tokenizers/ (tests/data in the source tree). `weights`: the dtype
// the random linear and convolution weights are stored in; by default as the models are published
// and loaded by the lab (F16 for SDXL's fp16 variant, F32 for BERT, ViT and CLIP).
// `where`: the device the models run on and their precision (CPU F32 by default).
BenchResult run_benchmark(const std::string& workload, int runs, const std::string& data_dir,
                          std::optional<DType> weights = std::nullopt, const Placement& where = {});

// On a device other than the CPU, GFLOP/s is not rated against the CPU's peak (peak_fraction 0); the
// CPU's peak is measured on the machine (bench/fma_peak.hpp).

}  // namespace mmx
