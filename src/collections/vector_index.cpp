// The vector matrix cache, exact top-k, and the HNSW graph. hnswlib (Debian's libhnswlib-dev, headers
// only) rather than FAISS: it adds points one at a time and marks deleted ones, which an incremental
// catalogue needs (FAISS's IndexHNSW removes nothing), and it brings no BLAS of its own next to mmx's GEMM.
#include "collections/vector_index.hpp"

#include <fcntl.h>
#include <hnswlib/hnswlib.h>
#include <omp.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <queue>
#include <unordered_set>

#include "mmx/error.hpp"
#include "mmx/files.hpp"

#include "backend/ops.hpp"
#include "core/log.hpp"

namespace mmx::collections {

namespace {

constexpr char kMagic[8] = {'M', 'M', 'X', 'V', 'E', 'C', 'S', '1'};
constexpr size_t kHeader = 64;

struct CacheHeader {
  char magic[8];
  int64_t generation, count, dim, model_id;
};

size_t ids_bytes(int64_t count) { return (size_t(count) * 8 + 63) / 64 * 64; }

struct Mapping {
  void* data = MAP_FAILED;
  size_t size = 0;
  ~Mapping() {
    if (data != MAP_FAILED) munmap(data, size);
  }
};

// The cache file when it holds exactly this generation of this model; nullopt otherwise (absent, stale,
// damaged: it is only a cache).
std::optional<VectorMatrix> map_cache(const std::string& path, int64_t generation, int64_t model_id, int64_t dim) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  struct stat st {};
  CacheHeader h{};
  const bool ok = fstat(fd, &st) == 0 && size_t(st.st_size) >= kHeader && ::pread(fd, &h, sizeof h, 0) == ssize_t(sizeof h) &&
                  std::memcmp(h.magic, kMagic, 8) == 0 && h.generation == generation && h.model_id == model_id &&
                  h.dim == dim && h.count >= 0 &&
                  size_t(st.st_size) == kHeader + ids_bytes(h.count) + size_t(h.count) * size_t(dim) * 4;
  if (!ok) {
    ::close(fd);
    return std::nullopt;
  }
  auto mapping = std::make_shared<Mapping>();
  mapping->size = size_t(st.st_size);
  mapping->data = mmap(nullptr, mapping->size, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  if (mapping->data == MAP_FAILED) return std::nullopt;
  const auto* base = static_cast<const char*>(mapping->data);
  VectorMatrix m;
  m.count = h.count;
  m.dim = dim;
  m.generation = generation;
  m.ids = reinterpret_cast<const int64_t*>(base + kHeader);
  m.data = reinterpret_cast<const float*>(base + kHeader + ids_bytes(h.count));
  m.owner = mapping;
  return m;
}

}  // namespace

std::string vector_cache_path(const std::string& db, int64_t model_id) { return str(db, ".vectors-", model_id); }
std::string hnsw_path(const std::string& db, int64_t model_id) { return str(db, ".hnsw-", model_id); }

VectorMatrix load_vector_matrix(const Catalogue& catalogue, const ModelRow& model) {
  // One read transaction: the generation, the count and the rows are of one snapshot while a writer commits.
  struct ReadSnapshot {
    const Catalogue& c;
    explicit ReadSnapshot(const Catalogue& catalogue) : c(catalogue) { c.exec("BEGIN"); }
    ~ReadSnapshot() { sqlite3_exec(c.handle(), "COMMIT", nullptr, nullptr, nullptr); }
  } snapshot(catalogue);
  const int64_t generation = catalogue.generation();
  const std::string cache = vector_cache_path(catalogue.path(), model.id);
  if (auto m = map_cache(cache, generation, model.id, model.dim)) return *m;
  // Read from the catalogue in id order straight into the cache's layout, then write it for the next reader.
  const int64_t count = catalogue.vector_count(model.id);
  CacheHeader h{};
  std::memcpy(h.magic, kMagic, 8);
  h.generation = generation;
  h.count = count;
  h.dim = model.dim;
  h.model_id = model.id;
  auto storage = std::make_shared<std::string>(kHeader + ids_bytes(count) + size_t(count) * size_t(model.dim) * 4, '\0');
  std::memcpy(storage->data(), &h, sizeof h);
  auto* ids = reinterpret_cast<int64_t*>(storage->data() + kHeader);
  auto* data = reinterpret_cast<float*>(storage->data() + kHeader + ids_bytes(count));
  Statement s = catalogue.prepare("SELECT id, vector FROM vectors WHERE model = ? ORDER BY id");
  s.bind(1, model.id);
  int64_t row = 0;
  for (; s.step(); ++row) {
    if (row >= count) fail(catalogue.path(), ": the vectors changed while they were read");
    if (s.blob_size(1) != model.dim * 4)
      fail(catalogue.path(), ": vector ", s.integer(0), " holds ", s.blob_size(1), " bytes, not ", model.dim, " floats");
    ids[row] = s.integer(0);
    std::memcpy(data + size_t(row) * size_t(model.dim), s.blob_data(1), size_t(model.dim) * 4);
  }
  if (row != count) fail(catalogue.path(), ": the vectors changed while they were read");
  try {
    write_file_atomically(cache, *storage);
  } catch (const Error& e) {
    log_debug("vector cache not written (", e.what(), "); searching from memory");
  }
  VectorMatrix m;
  m.count = count;
  m.dim = model.dim;
  m.generation = generation;
  m.ids = ids;
  m.data = data;
  m.owner = storage;
  return m;
}

std::vector<std::pair<int64_t, float>> exact_top_k(const VectorMatrix& m, const float* query, int64_t k,
                                                   std::optional<float> threshold) {
  std::vector<std::pair<int64_t, float>> out;
  if (m.count == 0 || k <= 0) return out;
  std::vector<float> scores(size_t(m.count));
  // scores[count] = M[count, dim] · q: one GEMM call (n = 1), which the backend splits over its threads.
  ops::gemm(false, true, 1, m.count, m.dim, 1.f, query, m.dim, m.data, m.dim, 0.f, scores.data(), m.count);
  // Top-k per thread over its share of rows, then merged: a min-heap of k entries each.
  const int threads = std::max(1, omp_get_max_threads());
  auto partial = std::vector<std::vector<std::pair<float, int64_t>>>(static_cast<size_t>(threads));
  using Entry = std::pair<float, int64_t>;
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num();
    const int64_t begin = m.count * t / threads, end = m.count * (t + 1) / threads;
    std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> heap;
    for (int64_t i = begin; i < end; ++i) {
      const float s = scores[size_t(i)];
      if (threshold && s < *threshold) continue;
      if (int64_t(heap.size()) < k) heap.push({s, -i});
      else if (Entry{s, -i} > heap.top()) {
        heap.pop();
        heap.push({s, -i});
      }
    }
    auto& mine = partial[size_t(t)];
    while (!heap.empty()) {
      mine.push_back(heap.top());
      heap.pop();
    }
  }
  std::vector<Entry> all;
  for (auto& p : partial) all.insert(all.end(), p.begin(), p.end());
  // Best score first; ties by row (the lower row first: -row is larger).
  std::sort(all.begin(), all.end(), std::greater<Entry>());
  if (int64_t(all.size()) > k) all.resize(size_t(k));
  for (const auto& [score, negative_row] : all) out.push_back({-negative_row, score});
  return out;
}

// ---- HNSW

HnswGraph::~HnswGraph() = default;

namespace {
std::mutex& search_mutex() {  // hnswlib keeps `ef` in the index: one search at a time sets and uses it
  static std::mutex m;
  return m;
}
}  // namespace

bool HnswGraph::is_current(const Catalogue& catalogue, const ModelRow& model) {
  const std::string path = hnsw_path(catalogue.path(), model.id);
  const auto generation = catalogue.meta(str("hnsw.", model.id, ".generation"));
  const auto bytes = catalogue.meta(str("hnsw.", model.id, ".bytes"));
  struct stat st {};
  // hnswlib trusts its file: only a file of the size this catalogue recorded, for its current vectors, is read.
  return generation && bytes && std::stoll(*generation) == catalogue.generation() && stat(path.c_str(), &st) == 0 &&
         std::to_string(st.st_size) == *bytes;
}

std::unique_ptr<HnswGraph> HnswGraph::load(const Catalogue& catalogue, const ModelRow& model) {
  if (!is_current(catalogue, model)) return nullptr;
  const std::string path = hnsw_path(catalogue.path(), model.id);
  std::unique_ptr<HnswGraph> g(new HnswGraph());
  g->space_ = std::make_unique<hnswlib::InnerProductSpace>(size_t(model.dim));
  try {
    g->index_ = std::make_unique<hnswlib::HierarchicalNSW<float>>(g->space_.get(), path);
  } catch (const std::exception& e) {
    log_warn(path, ": HNSW graph not read (", e.what(), "); searching exactly");
    return nullptr;
  }
  return g;
}

void HnswGraph::update(const Catalogue& catalogue, const ModelRow& model, const VectorMatrix& m) {
  const std::string path = hnsw_path(catalogue.path(), model.id);
  auto space = std::make_unique<hnswlib::InnerProductSpace>(size_t(model.dim));
  std::unique_ptr<hnswlib::HierarchicalNSW<float>> index;
  struct stat st {};
  const auto bytes = catalogue.meta(str("hnsw.", model.id, ".bytes"));
  if (bytes && stat(path.c_str(), &st) == 0 && std::to_string(st.st_size) == *bytes) {
    try {
      index = std::make_unique<hnswlib::HierarchicalNSW<float>>(space.get(), path, false, size_t(m.count) + 1);
    } catch (const std::exception&) {
      index.reset();
    }
  }
  if (!index)
    index = std::make_unique<hnswlib::HierarchicalNSW<float>>(space.get(), size_t(std::max<int64_t>(m.count, 1)), kLinks,
                                                              kEfConstruction);
  if (index->max_elements_ < size_t(m.count) + index->cur_element_count)
    index->resizeIndex(size_t(m.count) + index->cur_element_count);
  std::unordered_set<int64_t> current(m.ids, m.ids + m.count);
  std::vector<int64_t> missing;
  for (int64_t r = 0; r < m.count; ++r) {
    auto it = index->label_lookup_.find(hnswlib::labeltype(m.ids[r]));
    if (it == index->label_lookup_.end() || index->isMarkedDeleted(it->second)) missing.push_back(r);
  }
  std::vector<hnswlib::labeltype> stale;
  for (const auto& [label, internal] : index->label_lookup_)
    if (!current.count(int64_t(label)) && !index->isMarkedDeleted(internal)) stale.push_back(label);
  for (auto label : stale) index->markDelete(label);
  // hnswlib's addPoint is safe from several threads (per-node locks): the build runs on all of them.
#pragma omp parallel for schedule(dynamic, 64)
  for (int64_t i = 0; i < int64_t(missing.size()); ++i) {
    const int64_t r = missing[size_t(i)];
    index->addPoint(m.data + size_t(r) * size_t(m.dim), hnswlib::labeltype(m.ids[r]));
  }
  const std::string tmp = path + str(".tmp-", getpid());
  index->saveIndex(tmp);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    fail(path, ": cannot save the HNSW graph: ", std::strerror(errno));
  }
  stat(path.c_str(), &st);
  catalogue.set_meta(str("hnsw.", model.id, ".generation"), std::to_string(m.generation));
  catalogue.set_meta(str("hnsw.", model.id, ".bytes"), std::to_string(st.st_size));
}

std::vector<std::pair<int64_t, float>> HnswGraph::search(const float* query, int64_t k, int64_t ef,
                                                         std::optional<float> threshold) const {
  std::vector<std::pair<int64_t, float>> out;
  if (k <= 0 || index_->cur_element_count == 0) return out;
  std::priority_queue<std::pair<float, hnswlib::labeltype>> found;
  {
    std::lock_guard<std::mutex> lock(search_mutex());
    index_->setEf(size_t(std::max<int64_t>(ef, k)));
    found = index_->searchKnn(query, size_t(k));
  }
  // hnswlib's inner-product distance is 1 − dot; the queue holds the worst on top.
  while (!found.empty()) {
    const float score = 1.f - found.top().first;
    if (!threshold || score >= *threshold) out.push_back({int64_t(found.top().second), score});
    found.pop();
  }
  std::reverse(out.begin(), out.end());
  return out;
}

int64_t HnswGraph::size() const { return int64_t(index_->cur_element_count); }

}  // namespace mmx::collections
