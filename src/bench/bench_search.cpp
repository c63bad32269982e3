// Collection search benchmarks: exact top-10 and HNSW over N unit vectors of CLIP B/32's width (512),
// drawn around 1 000 centres (photo embeddings cluster by subject; uniform random vectors, the worst case
// for a graph, with search-hnsw-uniform-N). Times one query per run; the HNSW workloads also report the
// graph's build time and its recall@10 against exact search over 200 queries.
#include <chrono>
#include <cmath>
#include <filesystem>
#include <numeric>
#include <random>

#include "bench/bench.hpp"
#include "collections/catalogue.hpp"
#include "collections/vector_index.hpp"
#include "mmx/error.hpp"
#include "mmx/runtime.hpp"

namespace mmx {

namespace {

using Clock = std::chrono::steady_clock;

std::vector<float> unit_vectors(int64_t n, int64_t dim, bool clustered, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  const int64_t centres = 1000;
  std::vector<float> c(size_t(centres * dim)), v(size_t(n * dim));
  for (auto& x : c) x = normal(rng);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t k = int64_t(rng() % centres);
    double norm = 0;
    for (int64_t d = 0; d < dim; ++d) {
      const float x = clustered ? c[size_t(k * dim + d)] + 0.8f * normal(rng) : normal(rng);
      v[size_t(i * dim + d)] = x;
      norm += double(x) * x;
    }
    for (int64_t d = 0; d < dim; ++d) v[size_t(i * dim + d)] = float(v[size_t(i * dim + d)] / std::sqrt(norm));
  }
  return v;
}

}  // namespace

BenchResult bench_search(const std::string& workload, int runs, int64_t n, bool hnsw, bool clustered) {
  constexpr int64_t kDim = 512, kTop = 10;
  const std::vector<float> data = unit_vectors(n, kDim, clustered, 1);
  const std::vector<float> queries = unit_vectors(200, kDim, clustered, 2);
  std::vector<int64_t> ids(static_cast<size_t>(n));
  std::iota(ids.begin(), ids.end(), 1);
  collections::VectorMatrix m;
  m.count = n;
  m.dim = kDim;
  m.generation = 0;
  m.ids = ids.data();
  m.data = data.data();
  BenchResult r;
  r.workload = workload;
  r.runs = runs;
  r.threads = num_threads();
  r.items = 1;
  std::unique_ptr<collections::HnswGraph> graph;
  std::string detail = str(n, " unit vectors of 512, ", clustered ? "around 1000 centres" : "uniform", ", top-", kTop);
  char dir_template[] = "/tmp/mmx-bench-search-XXXXXX";
  const std::string dir = mkdtemp(dir_template);
  struct Remove {
    std::string d;
    ~Remove() { std::filesystem::remove_all(d); }
  } remove{dir};
  std::unique_ptr<collections::Catalogue> catalogue;
  if (hnsw) {
    catalogue = std::make_unique<collections::Catalogue>(dir + "/bench.db", true, true);
    const auto model = catalogue->add_model("bench", "1", kDim, "none");
    const auto start = Clock::now();
    collections::HnswGraph::update(*catalogue, model, m);
    const double build = std::chrono::duration<double>(Clock::now() - start).count();
    graph = collections::HnswGraph::load(*catalogue, model);
    if (!graph) fail("bench: the HNSW graph just built was not read back");
    int64_t found = 0, wanted = 0;
    for (int q = 0; q < 200; ++q) {
      const float* query = queries.data() + size_t(q) * kDim;
      const auto exact = collections::exact_top_k(m, query, kTop, std::nullopt);
      const auto approx = graph->search(query, kTop, 64, std::nullopt);
      for (const auto& [row, s] : exact) {
        ++wanted;
        for (const auto& [id, s2] : approx) found += id == ids[size_t(row)];
      }
    }
    detail += str(", HNSW M ", collections::HnswGraph::kLinks, " ef_construction ", collections::HnswGraph::kEfConstruction,
                  " ef 64: built in ", build, " s, recall@10 ", double(found) / double(wanted));
  }
  std::vector<double> ms;
  for (int run = 0; run < runs; ++run) {
    const float* query = queries.data() + size_t(run % 200) * kDim;
    const auto start = Clock::now();
    if (graph) graph->search(query, kTop, 64, std::nullopt);
    else collections::exact_top_k(m, query, kTop, std::nullopt);
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
  }
  std::sort(ms.begin(), ms.end());
  r.min_ms = ms.front();
  r.median_ms = ms[ms.size() / 2];
  r.items_per_s = 1000.0 / r.median_ms;
  r.detail = detail;
  return r;
}

}  // namespace mmx
