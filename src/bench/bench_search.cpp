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

// n unit vectors of `dim`. Clustered: around 1000 centres, each point its centre plus a move within
// the cluster's own 16-dimensional subspace and a little isotropic noise (photo embeddings have a low
// intrinsic dimension within a subject); uniform: isotropic Gaussian directions.
std::vector<float> unit_vectors(int64_t n, int64_t dim, bool clustered, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  constexpr int64_t kCentres = 1000, kLocal = 16;
  std::vector<float> centres, bases;
  if (clustered) {
    centres.resize(size_t(kCentres * dim));
    bases.resize(size_t(kCentres * kLocal * dim));
    for (auto& x : centres) x = normal(rng);
    for (auto& x : bases) x = 0.35f * normal(rng);
  }
  std::vector<float> v(size_t(n * dim)), z(kLocal);
  for (int64_t i = 0; i < n; ++i) {
    float* out = v.data() + size_t(i * dim);
    if (clustered) {
      const int64_t k = int64_t(rng() % kCentres);
      for (auto& x : z) x = normal(rng);
      for (int64_t d = 0; d < dim; ++d) {
        float x = centres[size_t(k * dim + d)] + 0.1f * normal(rng);
        for (int64_t j = 0; j < kLocal; ++j) x += z[size_t(j)] * bases[size_t((k * kLocal + j) * dim + d)];
        out[d] = x;
      }
    } else {
      for (int64_t d = 0; d < dim; ++d) out[d] = normal(rng);
    }
    double norm = 0;
    for (int64_t d = 0; d < dim; ++d) norm += double(out[d]) * out[d];
    for (int64_t d = 0; d < dim; ++d) out[d] = float(out[d] / std::sqrt(norm));
  }
  return v;
}

}  // namespace

BenchResult bench_search(const std::string& workload, int runs, int64_t n, bool hnsw, bool clustered) {
  constexpr int64_t kDim = 512, kTop = 10, kDefaultEf = 128;  // Collection's default for top-10
  // The queries are 200 more points of the same distribution, not in the index.
  const std::vector<float> all = unit_vectors(n + 200, kDim, clustered, 1);
  const std::vector<float> data(all.begin(), all.begin() + n * kDim), queries(all.begin() + n * kDim, all.end());
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
    detail += str(", HNSW M ", collections::HnswGraph::kLinks, " ef_construction ", collections::HnswGraph::kEfConstruction,
                  ": built in ", build, " s; recall@10 against exact over 200 queries:");
    for (int64_t ef : {64, 128, 256, 512}) {
      int64_t found = 0, wanted = 0;
      for (int q = 0; q < 200; ++q) {
        const float* query = queries.data() + size_t(q) * kDim;
        const auto exact = collections::exact_top_k(m, query, kTop, std::nullopt);
        const auto approx = graph->search(query, kTop, ef, std::nullopt);
        for (const auto& [row, s] : exact) {
          ++wanted;
          for (const auto& [id, s2] : approx) found += id == ids[size_t(row)];
        }
      }
      detail += str(" ef ", ef, " ", double(found) / double(wanted));
    }
  }
  std::vector<double> ms;
  for (int run = 0; run < runs; ++run) {
    const float* query = queries.data() + size_t(run % 200) * kDim;
    const auto start = Clock::now();
    if (graph) graph->search(query, kTop, kDefaultEf, std::nullopt);
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
