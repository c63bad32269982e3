// Searching a catalogue: queries embedded with the catalogue's model (each tower loaded on first use),
// combined as rclip combines them, answered from the vector matrix or the HNSW graph.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <unordered_map>
#include <mutex>
#include <numeric>

#include "mmx/collection.hpp"
#include "mmx/embed.hpp"
#include "mmx/error.hpp"
#include "mmx/files.hpp"
#include "mmx/model.hpp"

#include "backend/ops.hpp"
#include "collections/catalogue.hpp"
#include "collections/vector_index.hpp"
#include "core/log.hpp"

namespace mmx {

using collections::Catalogue;
using collections::Statement;

namespace {

bool parse_weight(const std::string& text, float& weight) {
  if (text.empty()) return false;
  char* end = nullptr;
  const double w = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() || !std::isfinite(w)) return false;
  weight = static_cast<float>(w);
  return true;
}

QueryTerm make_term(std::string text, float sign, bool files_are_images) {
  QueryTerm term;
  term.weight = sign;
  // "W:rest" with a number W: a weighted term (rclip's "2:golden retriever").
  const size_t colon = text.find(':');
  float w = 1.f;
  if (colon != std::string::npos && parse_weight(text.substr(0, colon), w)) {
    term.weight = sign * w;
    text = text.substr(colon + 1);
  }
  while (!text.empty() && text.front() == ' ') text.erase(0, 1);
  while (!text.empty() && text.back() == ' ') text.pop_back();
  if (text.empty()) usage_error("an empty query term");
  term.kind = files_are_images && has_image_extension(text) && file_exists(text) ? QueryTerm::Kind::Image : QueryTerm::Kind::Text;
  term.value = std::move(text);
  return term;
}

}  // namespace

std::vector<QueryTerm> parse_query(const std::vector<std::string>& tokens, bool files_are_images) {
  // Split elements holding " + " / " - " into terms and operators first.
  std::vector<std::string> parts;
  for (const auto& token : tokens) {
    size_t start = 0;
    for (size_t i = 0; i + 2 < token.size(); ++i)
      if (token[i] == ' ' && (token[i + 1] == '+' || token[i + 1] == '-') && token[i + 2] == ' ') {
        parts.push_back(token.substr(start, i - start));
        parts.push_back(token.substr(i + 1, 1));
        start = i + 3;
        i += 2;
      }
    parts.push_back(token.substr(start));
  }
  std::vector<QueryTerm> terms;
  float sign = 1.f;
  bool expect_term = true, after_operator = false;
  for (const auto& part : parts) {
    if (part == "+" || part == "-") {
      if (after_operator) usage_error("query: two operators in a row before '", part, "'");
      sign = part == "-" ? -1.f : 1.f;
      expect_term = after_operator = true;
      continue;
    }
    after_operator = false;
    if (!expect_term) usage_error("query: '", part, "' follows another term without + or -");
    terms.push_back(make_term(part, sign, files_are_images));
    expect_term = false;
    sign = 1.f;
  }
  if (terms.empty()) usage_error("query: no terms");
  if (expect_term) usage_error("query: ends with an operator");
  return terms;
}

// The readable files holding one vector's content (copies share it), by path.
constexpr const char* kFilesOfVector =
    "SELECT f.id, f.path FROM vectors v JOIN files f ON f.hash = v.hash AND f.error IS NULL WHERE v.id = ? ORDER BY f.path";

struct Collection::State {
  std::string db;
  Placement placement;
  mutable std::mutex mutex;  // the catalogue connection, the lazily loaded model and the snapshot pointer
  std::unique_ptr<Catalogue> catalogue;
  collections::ModelRow model;
  struct Snapshot {
    collections::VectorMatrix matrix;
    bool hnsw_current = false;  // a graph for this generation is on disk; read on first use
    mutable std::once_flag hnsw_once;
    mutable std::unique_ptr<collections::HnswGraph> hnsw;
  };
  std::shared_ptr<const Snapshot> snapshot;
  mutable std::shared_ptr<const Model> loaded;
  mutable std::unique_ptr<TextEmbedder> text;
  mutable std::unique_ptr<ImageEmbedder> image;

  std::shared_ptr<const Snapshot> current() const {
    std::lock_guard<std::mutex> lock(mutex);
    return snapshot;
  }
  void reload() {
    auto s = std::make_shared<Snapshot>();
    s->matrix = collections::load_vector_matrix(*catalogue, model);
    s->hnsw_current = collections::HnswGraph::is_current(*catalogue, model);
    snapshot = std::move(s);
  }
  const collections::HnswGraph* graph(const Snapshot& s) const {
    if (!s.hnsw_current) return nullptr;
    std::call_once(s.hnsw_once, [&] {
      std::lock_guard<std::mutex> lock(mutex);
      s.hnsw = collections::HnswGraph::load(*catalogue, model);
    });
    return s.hnsw.get();
  }
  // Auto: the graph where one is current and the collection is large enough for it to pay (below,
  // one exact GEMM is faster than reading the graph, and exact has no recall to lose).
  bool use_graph(const Snapshot& s, SearchMethod method) const {
    if (method == SearchMethod::Exact || !s.hnsw_current) return false;
    return method == SearchMethod::Hnsw || s.matrix.count >= IndexOptions::kDefaultHnswMinVectors;
  }
  const Model& model_loaded() const {
    if (!loaded) {
      try {
        loaded = Model::load(model.name, placement);
      } catch (const Error& e) {
        throw Error(e.kind(), str(db, ": cannot load the catalogue's model ", model.name, ": ", e.what()),
                    "the model indexed it; keep its folder (or Hub cache) where it was, or pass --model");
      }
    }
    return *loaded;
  }
  std::vector<float> embed_texts(const std::vector<std::string>& texts) const {
    std::lock_guard<std::mutex> lock(mutex);
    if (!text) {
      const Model& m = model_loaded();
      if (!m.has_text() || !m.logit_scale())
        usage_error(db, ": the catalogue's model ", model.name, " embeds no text in the images' space (",
                    m.architecture(), "): search it by image");
      text = std::make_unique<TextEmbedder>(loaded);
    }
    EmbedOptions o;
    o.normalize = true;
    const EmbedResult r = text->embed(texts, o);
    return std::vector<float>(r.embeddings.data<float>(), r.embeddings.data<float>() + r.embeddings.numel());
  }
  std::vector<float> embed_images(const std::vector<Image>& images) const {
    std::lock_guard<std::mutex> lock(mutex);
    if (!image) {
      model_loaded();
      image = std::make_unique<ImageEmbedder>(loaded);
    }
    EmbedOptions o;
    o.normalize = true;
    const EmbedResult r = image->embed(images, o);
    return std::vector<float>(r.embeddings.data<float>(), r.embeddings.data<float>() + r.embeddings.numel());
  }
  std::vector<float> stored_vector(const std::string& path) const {
    std::lock_guard<std::mutex> lock(mutex);
    Statement s = catalogue->prepare(
        "SELECT v.vector FROM files f JOIN vectors v ON v.hash = f.hash AND v.model = ? WHERE f.path = ? OR f.id = ?");
    char* end = nullptr;
    const long long id = std::strtoll(path.c_str(), &end, 10);
    s.bind(1, model.id).bind(2, path).bind(3, int64_t(*end == '\0' && !path.empty() ? id : -1));
    if (!s.step()) usage_error(db, ": no catalogued image '", path, "'");
    const auto* v = static_cast<const float*>(s.blob_data(0));
    return std::vector<float>(v, v + model.dim);
  }
};

Collection::Collection(std::unique_ptr<State> state) : state_(std::move(state)) {}
Collection::~Collection() = default;

std::unique_ptr<Collection> Collection::open(const std::string& db, const std::string& model, const Placement& placement) {
  auto s = std::make_unique<State>();
  s->db = db;
  s->placement = placement;
  s->catalogue = std::make_unique<Catalogue>(db, false, false);
  s->model = s->catalogue->select_model(model);
  s->reload();
  return std::unique_ptr<Collection>(new Collection(std::move(s)));
}

void Collection::refresh() {
  std::lock_guard<std::mutex> lock(state_->mutex);
  if (state_->catalogue->generation() != state_->snapshot->matrix.generation) state_->reload();
}

std::vector<float> Collection::query_vector(const std::vector<QueryTerm>& terms) const {
  if (terms.empty()) usage_error("a search needs at least one query (text or image)");
  const int64_t dim = state_->model.dim;
  std::vector<float> sum(size_t(dim), 0.f);
  std::vector<std::string> texts;
  std::vector<float> text_weights;
  for (const auto& t : terms) {
    std::vector<float> v;
    switch (t.kind) {
      case QueryTerm::Kind::Text:
        texts.push_back(t.value);
        text_weights.push_back(t.weight);
        continue;
      case QueryTerm::Kind::Image: v = state_->embed_images({decode_image_upright(read_file(t.value), t.value)}); break;
      case QueryTerm::Kind::ImageBytes: v = state_->embed_images({decode_image_upright(t.value, "the query image")}); break;
      case QueryTerm::Kind::StoredFile: v = state_->stored_vector(t.value); break;
    }
    if (int64_t(v.size()) != dim) fail("a query vector of ", v.size(), " values for a catalogue of ", dim);
    for (int64_t i = 0; i < dim; ++i) sum[size_t(i)] += t.weight * v[size_t(i)];
  }
  if (!texts.empty()) {
    const std::vector<float> v = state_->embed_texts(texts);
    if (int64_t(v.size()) != dim * int64_t(texts.size()))
      fail(state_->db, ": the model's text embeddings have ", v.size() / texts.size(), " values, its images ", dim);
    for (size_t t = 0; t < texts.size(); ++t)
      for (int64_t i = 0; i < dim; ++i) sum[size_t(i)] += text_weights[t] * v[t * size_t(dim) + size_t(i)];
  }
  double norm = 0;
  for (float x : sum) norm += double(x) * x;
  if (norm <= 1e-24) usage_error("the query's terms cancel out (their weighted sum is zero)");
  const float inv = float(1.0 / std::sqrt(norm));
  for (float& x : sum) x *= inv;
  return sum;
}

std::vector<SearchHit> Collection::search_vector(const std::vector<float>& query, const SearchOptions& options) const {
  if (options.top_k < 1) usage_error("top-k ", options.top_k, " is not positive");
  if (int64_t(query.size()) != state_->model.dim) usage_error("a query of ", query.size(), " values for vectors of ", state_->model.dim);
  const auto snap = state_->current();
  if (options.method == SearchMethod::Hnsw && !snap->hnsw_current)
    usage_error(state_->db, ": no current HNSW graph for ", state_->model.name, " (mmx index --hnsw on builds one)");
  const collections::HnswGraph* graph = state_->use_graph(*snap, options.method) ? state_->graph(*snap) : nullptr;
  // Over-fetch a little: one vector may be several files (copies), and the result counts files.
  const int64_t k = options.top_k;
  std::vector<std::pair<int64_t, float>> by_vector;  // (vector id, score)
  if (graph) {
    by_vector = graph->search(query.data(), k, options.ef > 0 ? options.ef : std::max<int64_t>(8 * k, 128), options.threshold);
  } else {
    for (const auto& [row, score] : collections::exact_top_k(snap->matrix, query.data(), k, options.threshold))
      by_vector.push_back({snap->matrix.ids[row], score});
  }
  std::vector<SearchHit> hits;
  std::lock_guard<std::mutex> lock(state_->mutex);
  Statement files = state_->catalogue->prepare(
      kFilesOfVector);
  for (const auto& [id, score] : by_vector) {
    files.bind(1, id);
    while (files.step()) hits.push_back({files.integer(0), files.text(1), score});
    files.reset();
    if (int64_t(hits.size()) >= k) break;
  }
  if (int64_t(hits.size()) > k) hits.resize(size_t(k));
  return hits;
}

std::vector<SearchHit> Collection::search(const std::vector<QueryTerm>& terms, const SearchOptions& options) const {
  // A text lies off the images' manifold (CLIP's modality gap), where the graph needs a wider search to
  // find the exact neighbours (docs/collections.md: 5–9 of 10 at ef 128, 9 at 512, 10 at 2 048).
  SearchOptions o = options;
  const bool text = std::any_of(terms.begin(), terms.end(), [](const QueryTerm& t) { return t.kind == QueryTerm::Kind::Text; });
  if (o.ef == 0 && text) o.ef = std::max<int64_t>(32 * o.top_k, 512);
  return search_vector(query_vector(terms), o);
}

std::vector<std::vector<SearchHit>> Collection::duplicates(float threshold) const {
  const auto snap = state_->current();
  const auto& m = snap->matrix;
  std::vector<int64_t> parent(size_t(m.count));
  std::iota(parent.begin(), parent.end(), 0);
  auto find = [&](int64_t x) {
    while (parent[size_t(x)] != x) x = parent[size_t(x)] = parent[size_t(parent[size_t(x)])];
    return x;
  };
  std::vector<float> best(size_t(m.count), 0.f);
  auto link = [&](int64_t a, int64_t b, float s) {
    best[size_t(a)] = std::max(best[size_t(a)], s);
    best[size_t(b)] = std::max(best[size_t(b)], s);
    parent[size_t(find(a))] = find(b);
  };
  if (const collections::HnswGraph* graph = state_->use_graph(*snap, SearchMethod::Auto) ? state_->graph(*snap) : nullptr) {
    // each vector's 16 nearest through the graph
    std::unordered_map<int64_t, int64_t> row_of;
    for (int64_t r = 0; r < m.count; ++r) row_of[m.ids[r]] = r;
    for (int64_t r = 0; r < m.count; ++r)
      for (const auto& [id, s] : graph->search(m.data + size_t(r) * size_t(m.dim), 16, 64, threshold))
        if (row_of.count(id) && row_of[id] != r) link(r, row_of[id], s);
  } else {  // all pairs, a block of rows at a time: [block, count] scores from one GEMM
    constexpr int64_t kBlock = 256;
    std::vector<float> scores(size_t(kBlock) * size_t(m.count));
    for (int64_t r0 = 0; r0 < m.count; r0 += kBlock) {
      const int64_t rows = std::min(kBlock, m.count - r0);
      ops::gemm(false, true, rows, m.count, m.dim, 1.f, m.data + size_t(r0) * size_t(m.dim), m.dim, m.data, m.dim, 0.f,
                scores.data(), m.count);
      for (int64_t i = 0; i < rows; ++i)
        for (int64_t j = r0 + i + 1; j < m.count; ++j)
          if (scores[size_t(i) * size_t(m.count) + size_t(j)] >= threshold) link(r0 + i, j, scores[size_t(i) * size_t(m.count) + size_t(j)]);
    }
  }
  // Files per vector: copies of one content are duplicates of each other at score 1.
  std::map<int64_t, std::vector<SearchHit>> groups;
  std::lock_guard<std::mutex> lock(state_->mutex);
  Statement files = state_->catalogue->prepare(
      kFilesOfVector);
  for (int64_t r = 0; r < m.count; ++r) {
    files.bind(1, m.ids[r]);
    std::vector<SearchHit> mine;
    while (files.step()) mine.push_back({files.integer(0), files.text(1), best[size_t(r)]});
    files.reset();
    if (mine.size() > 1)
      for (auto& h : mine) h.score = 1.f;
    auto& g = groups[find(r)];
    g.insert(g.end(), mine.begin(), mine.end());
  }
  std::vector<std::vector<SearchHit>> out;
  for (auto& [root, g] : groups)
    if (g.size() > 1) {
      std::sort(g.begin(), g.end(), [](const SearchHit& a, const SearchHit& b) { return a.path < b.path; });
      out.push_back(std::move(g));
    }
  std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
  return out;
}

int64_t Collection::size() const { return state_->current()->matrix.count; }
int64_t Collection::dimension() const { return state_->model.dim; }
std::string Collection::model_name() const { return state_->model.name; }
bool Collection::has_hnsw() const { return state_->current()->hnsw_current; }
bool Collection::uses_hnsw(SearchMethod method) const {
  const auto snap = state_->current();
  return state_->use_graph(*snap, method);
}

std::optional<Collection::File> Collection::file(int64_t file_id) const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  Statement s = state_->catalogue->prepare("SELECT path, hash, width, height FROM files WHERE id = ? AND error IS NULL");
  s.bind(1, file_id);
  if (!s.step()) return std::nullopt;
  File f;
  f.id = file_id;
  f.path = s.text(0);
  f.content_hash = collections::hex(s.blob(1));
  f.width = s.is_null(2) ? 0 : s.integer(2);
  f.height = s.is_null(3) ? 0 : s.integer(3);
  return f;
}

const std::string& Collection::db() const { return state_->db; }

}  // namespace mmx
