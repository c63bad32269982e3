// A model's vectors as one matrix (src/collections/vector_index.cpp), memory-mapped from a cache file
// beside the catalogue, searched exactly (one matrix–vector product and a top-k selection) or through an
// HNSW graph (hnswlib), which is kept beside it too and updated incrementally.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "collections/catalogue.hpp"

namespace hnswlib {
template <typename T>
class HierarchicalNSW;
template <typename T>
class SpaceInterface;
}  // namespace hnswlib

namespace mmx::collections {

struct VectorMatrix {
  int64_t count = 0, dim = 0, generation = -1;
  const int64_t* ids = nullptr;  // vectors.id of each row
  const float* data = nullptr;   // [count, dim], rows L2-normalised
  std::shared_ptr<const void> owner;
};

// The matrix of `model`'s vectors as of the catalogue's generation: the cache file "<db>.vectors-<id>"
// memory-mapped when it is current, else read from the catalogue (and the cache rewritten when the
// catalogue's folder is writable).
VectorMatrix load_vector_matrix(const Catalogue& catalogue, const ModelRow& model);
std::string vector_cache_path(const std::string& db, int64_t model_id);

// (row, score) of the best `k` rows by dot product with `query` (normalised: the cosine), best first;
// rows under `threshold` are left out.
std::vector<std::pair<int64_t, float>> exact_top_k(const VectorMatrix& m, const float* query, int64_t k,
                                                   std::optional<float> threshold);

class HnswGraph {
 public:
  // M = 16 links per node, ef_construction 200 (hnswlib's defaults, measured in docs/collections.md).
  static constexpr size_t kLinks = 16, kEfConstruction = 200;
  ~HnswGraph();
  // The graph of `model` when its file is current with the catalogue; nullptr otherwise.
  static std::unique_ptr<HnswGraph> load(const Catalogue& catalogue, const ModelRow& model);
  // Whether load would find a current graph, without reading it (reading 100 000 vectors' graph takes
  // about a second: more than an exact search over them).
  static bool is_current(const Catalogue& catalogue, const ModelRow& model);
  // Brings the graph in line with `m` (adding new ids, marking removed ones deleted; building it when
  // there is none) and saves it, recording the generation. Threads: the process's.
  static void update(const Catalogue& catalogue, const ModelRow& model, const VectorMatrix& m);
  // (vector id, score), best first.
  std::vector<std::pair<int64_t, float>> search(const float* query, int64_t k, int64_t ef,
                                                std::optional<float> threshold) const;
  int64_t size() const;

 private:
  HnswGraph() = default;
  std::unique_ptr<hnswlib::SpaceInterface<float>> space_;
  std::unique_ptr<hnswlib::HierarchicalNSW<float>> index_;
};
std::string hnsw_path(const std::string& db, int64_t model_id);

}  // namespace mmx::collections
