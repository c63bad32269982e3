// Photo collections (src/collections/): folders indexed once into a catalogue (SQLite) of image
// embeddings, searched by text, by image and by weighted mixes of both, exactly (one GEMM over the
// normalised vectors) or through an HNSW graph (hnswlib) for large collections.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mmx/image.hpp"
#include "mmx/placement.hpp"

namespace mmx {

// ---- Indexing

struct IndexOptions {
  bool include_hidden = false;  // files and folders whose names start with "." (skipped by default)
  int64_t batch_size = 32;      // images per forward pass and per transaction: what an interruption loses
  // Embed only the files of shard `index` of `count` (by a hash of the path): N machines each index one
  // shard into their own catalogue, and merge_catalogues combines them.
  int shard_index = 0, shard_count = 1;
  // HNSW graph: built or updated when the model's vectors number at least this many (0: always; -1: never).
  int64_t hnsw_min_vectors = kDefaultHnswMinVectors;
  // Progress: files embedded so far of those that need it (decoded and embedded).
  std::function<void(int64_t done, int64_t total)> progress;
  // A file that could not be read or decoded: reported once, skipped, counted.
  std::function<void(const std::string& path, const std::string& error)> on_bad_file;
  static constexpr int64_t kDefaultHnswMinVectors = 250000;
};

struct IndexSummary {
  int64_t files = 0;       // image files found under the folders
  int64_t unchanged = 0;   // same path, size and mtime as catalogued: not read at all
  int64_t embedded = 0;    // decoded and embedded
  int64_t reused = 0;      // new path, content already embedded (a rename, a move, a copy): not decoded
  int64_t removed = 0;     // catalogued under the folders, gone from disk
  int64_t failed = 0;      // unreadable or undecodable (this run and known from earlier runs)
  int64_t vectors = 0;     // the model's vectors in the catalogue afterwards
  bool hnsw = false;       // an HNSW graph was built or updated
  double seconds = 0;
};

// Indexes every image file under `folders` (recursively; symbolic links followed, each folder once, so a
// loop ends) into the catalogue at `db` (created when missing) with `model` (a CLIP folder or Hub id, or
// any image encoder), incrementally. Runs on one catalogue are serialised by a lock: a second one fails
// naming the catalogue. A model already in the catalogue at another revision is refused.
IndexSummary index_folders(const std::string& db, const std::vector<std::string>& folders, const std::string& model,
                           const Placement& placement, const IndexOptions& options);

// Combines catalogues made with --shard (same model and revision) into `db`; vectors are copied, not
// recomputed. Returns the files added.
int64_t merge_catalogues(const std::string& db, const std::vector<std::string>& sources);

// Writes the model's normalised vectors as `npy_path` (float32 [N, D]) and their files' paths, one per line
// in the same order, as `paths_path`: what numpy, FAISS and autofaiss read.
int64_t export_vectors(const std::string& db, const std::string& model, const std::string& npy_path,
                       const std::string& paths_path);
// Reads such a pair back into a catalogue as the vectors of `model` (created with that name and the
// revision "imported"); the files must exist (their size, mtime and hash are recorded).
int64_t import_vectors(const std::string& db, const std::string& model, const std::string& npy_path,
                       const std::string& paths_path);

// ---- Searching

struct QueryTerm {
  enum class Kind { Text, Image, ImageBytes, StoredFile };
  Kind kind = Kind::Text;
  std::string value;   // the text, the image path, the encoded image, or a catalogued file's path
  float weight = 1.f;  // negative: subtracted
};

// rclip's query language: terms joined by "+" and "-", each optionally "W:" weighted, an existing image
// file taken as an image ("2:golden retriever" + pool.jpg - fruit). Each element of `tokens` is a term or
// an operator; an element holding " + " or " - " is split there. `files_are_images` false: every term is
// a text (a server never reads its own files for a client's query).
std::vector<QueryTerm> parse_query(const std::vector<std::string>& tokens, bool files_are_images = true);

struct SearchHit {
  int64_t file_id = 0;
  std::string path;
  float score = 0;  // cosine similarity of the image to the combined query
};

enum class SearchMethod { Auto, Exact, Hnsw };

struct SearchOptions {
  int64_t top_k = 10;
  std::optional<float> threshold;  // only hits scoring at least this
  // Auto: the HNSW graph where one is current and the collection holds at least
  // IndexOptions::kDefaultHnswMinVectors, else exact (cheaper than reading the graph below that).
  SearchMethod method = SearchMethod::Auto;
  int64_t ef = 0;  // HNSW breadth (0: max(8 · top_k, 128); max(32 · top_k, 512) for a query with a text)
};

class Collection {
 public:
  // Opens a catalogue for searching with `model` (empty: the one model it holds; a usage error naming the
  // models when it holds several). Towers load on first use: a text query never loads the image encoder's
  // packed weights.
  static std::unique_ptr<Collection> open(const std::string& db, const std::string& model = "",
                                          const Placement& placement = {});
  ~Collection();

  // The combined query: each term embedded and L2-normalised, weighted, summed, the sum normalised.
  std::vector<float> query_vector(const std::vector<QueryTerm>& terms) const;
  std::vector<SearchHit> search(const std::vector<QueryTerm>& terms, const SearchOptions& options) const;
  std::vector<SearchHit> search_vector(const std::vector<float>& query, const SearchOptions& options) const;
  // Groups of files whose images score at least `threshold` with another of the group (connected
  // components), largest first, each sorted by path.
  std::vector<std::vector<SearchHit>> duplicates(float threshold) const;

  int64_t size() const;        // vectors searched
  int64_t dimension() const;
  std::string model_name() const;
  bool has_hnsw() const;                     // a current graph is on disk
  bool uses_hnsw(SearchMethod method) const;  // whether a search with `method` goes through it
  struct File {
    int64_t id = 0;
    std::string path, content_hash;  // the hash as 64 hex digits
    int64_t width = 0, height = 0;   // of the upright image; 0 when unknown
  };
  // A catalogued file by id (the web page's thumbnails and clicks); nullopt when none.
  std::optional<File> file(int64_t file_id) const;
  const std::string& db() const;
  // Reloads the vectors when the catalogue changed since (a server sees a finished `mmx index`).
  void refresh();

  struct State;

 private:
  explicit Collection(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace mmx
