// Incremental indexing: walk, compare with the catalogue by (path, size, mtime), hash what is new or
// changed, reuse vectors by content hash, decode and embed the rest in batches, one transaction each.
#include <openssl/evp.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <future>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "mmx/collection.hpp"
#include "mmx/embed.hpp"
#include "mmx/error.hpp"
#include "mmx/files.hpp"
#include "mmx/image.hpp"
#include "mmx/model.hpp"

#include "collections/catalogue.hpp"
#include "collections/model_identity.hpp"
#include "collections/vector_index.hpp"
#include "core/log.hpp"

namespace mmx {

using collections::Catalogue;
using collections::Statement;

namespace {

struct FoundFile {
  std::string path;  // absolute, as walked (symbolic links keep the name they were found under)
  int64_t size = 0, mtime_ns = 0;
};

// FNV-1a: a shard assignment that is the same on every machine and build (std::hash is not).
uint64_t stable_hash(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

// Whether the file at `path` under `root` is in this run's shard: by the FNV-1a of its path below the root,
// so every machine splits a collection the same way wherever it is mounted.
bool in_shard(const std::string& path, const std::string& root, const IndexOptions& o) {
  if (o.shard_count <= 1) return true;
  const std::string relative = path.substr(std::min(path.size(), root.size() + 1));
  return int(stable_hash(relative) % uint64_t(o.shard_count)) == o.shard_index;
}

bool hidden(const std::filesystem::path& p) {
  const std::string name = p.filename().string();
  return name.size() > 1 && name[0] == '.' && name != "..";
}

// Every image file under `root`: symbolic links to folders are followed once per folder (by device and
// inode), so a link loop ends; folders that cannot be read are skipped with a warning.
void walk(const std::string& root, const std::string& db_prefix, const IndexOptions& options, std::vector<FoundFile>& out,
          std::set<std::pair<dev_t, ino_t>>& seen) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path base = fs::absolute(root, ec).lexically_normal();
  struct stat st {};
  if (stat(base.c_str(), &st) != 0) fail(root, ": no such folder");
  if (!S_ISDIR(st.st_mode)) fail(root, ": not a folder");
  if (!seen.insert({st.st_dev, st.st_ino}).second) return;
  const std::string prefix = base.string();
  auto it = fs::recursive_directory_iterator(base, fs::directory_options::follow_directory_symlink |
                                                       fs::directory_options::skip_permission_denied, ec);
  if (ec) fail(root, ": cannot read the folder: ", ec.message());
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) {
      log_warn(root, ": ", ec.message(), "; skipped");
      ec.clear();
      continue;
    }
    const fs::path& p = it->path();
    // The catalogue's own files (its thumbnails, caches, lock) when it lives inside the folder.
    if (p.string().rfind(db_prefix, 0) == 0) {
      if (it->is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    if (!options.include_hidden && hidden(p)) {
      if (it->is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    if (stat(p.c_str(), &st) != 0) continue;  // a dangling link
    if (S_ISDIR(st.st_mode)) {
      if (!seen.insert({st.st_dev, st.st_ino}).second) it.disable_recursion_pending();
      continue;
    }
    if (!S_ISREG(st.st_mode) || !has_image_extension(p.string())) continue;
    FoundFile f;
    f.path = p.lexically_normal().string();
    if (!in_shard(f.path, prefix, options)) continue;
    f.size = st.st_size;
    f.mtime_ns = int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    out.push_back(std::move(f));
  }
}

struct CatalogueFile {
  int64_t id = 0, size = 0, mtime_ns = 0;
  std::string hash;
  bool failed = false;
};

bool under(const std::string& path, const std::vector<std::string>& roots) {
  for (const auto& r : roots)
    if (path.size() > r.size() && path.compare(0, r.size(), r) == 0 && path[r.size()] == '/') return true;
  return false;
}

void upsert_file(const Catalogue& c, const FoundFile& f, const std::string& hash, int64_t width, int64_t height,
                 const std::string& error) {
  Statement s = c.prepare(
      "INSERT INTO files(path, size, mtime_ns, hash, width, height, error) VALUES (?, ?, ?, ?, ?, ?, ?) "
      "ON CONFLICT(path) DO UPDATE SET size = excluded.size, mtime_ns = excluded.mtime_ns, hash = excluded.hash, "
      "width = excluded.width, height = excluded.height, error = excluded.error");
  s.bind(1, f.path).bind(2, f.size).bind(3, f.mtime_ns).bind_blob(4, hash.data(), hash.size());
  if (width > 0) s.bind(5, width).bind(6, height);
  else s.bind_null(5).bind_null(6);
  if (error.empty()) s.bind_null(7);
  else s.bind(7, error);
  s.run();
}

// A file recorded by its hash alone (a rename, a copy) takes the width and height of its decoded twin.
void copy_twin_sizes(const Catalogue& c) {
  c.exec(
      "UPDATE files SET width = (SELECT f.width FROM files f WHERE f.hash = files.hash AND f.width IS NOT NULL LIMIT 1), "
      "height = (SELECT f.height FROM files f WHERE f.hash = files.hash AND f.height IS NOT NULL LIMIT 1) "
      "WHERE width IS NULL AND error IS NULL");
}

}  // namespace

IndexSummary index_folders(const std::string& db, const std::vector<std::string>& folders, const std::string& model,
                           const Placement& placement, const IndexOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  if (folders.empty()) usage_error("no folder to index");
  if (options.shard_count < 1 || options.shard_index < 0 || options.shard_index >= options.shard_count)
    usage_error("shard ", options.shard_index, "/", options.shard_count, " is not one of 0..N-1 of N");
  if (options.batch_size < 1) usage_error("batch size ", options.batch_size, " is not positive");
  IndexSummary summary;

  // Folders first: a missing one fails before the catalogue is created or a model loaded.
  std::vector<FoundFile> found;
  std::vector<std::string> roots;
  std::set<std::pair<dev_t, ino_t>> seen;
  std::error_code db_ec;
  const std::string db_prefix = std::filesystem::absolute(db, db_ec).lexically_normal().string();
  for (const auto& folder : folders) {
    std::error_code ec;
    roots.push_back(std::filesystem::absolute(folder, ec).lexically_normal().string());
    while (roots.back().size() > 1 && roots.back().back() == '/') roots.back().pop_back();
    walk(folder, db_prefix, options, found, seen);
  }
  std::sort(found.begin(), found.end(), [](const FoundFile& a, const FoundFile& b) { return a.path < b.path; });
  found.erase(std::unique(found.begin(), found.end(), [](const FoundFile& a, const FoundFile& b) { return a.path == b.path; }),
              found.end());
  summary.files = int64_t(found.size());

  const collections::WriterLock lock(db);
  Catalogue catalogue(db, true, true);
  const collections::ModelIdentity identity = collections::identify_model(model);
  std::optional<collections::ModelRow> row = catalogue.model(identity.name);
  if (row && row->revision != identity.revision)
    throw Error(ErrorKind::Runtime,
                str(db, ": the catalogue holds vectors of ", identity.name, " at revision ", row->revision,
                    ", and the model is now at revision ", identity.revision),
                "vectors of two revisions do not compare: index into another --db");

  // What the catalogue knows of these folders.
  std::unordered_map<std::string, CatalogueFile> known;
  {
    Statement s = catalogue.prepare("SELECT id, path, size, mtime_ns, hash, error IS NOT NULL FROM files");
    while (s.step()) {
      std::string path = s.text(1);
      if (!under(path, roots)) continue;
      known[path] = {s.integer(0), s.integer(2), s.integer(3), s.blob(4), s.integer(5) != 0};
    }
  }
  std::unordered_set<std::string> embedded_hashes;
  if (row) {
    Statement s = catalogue.prepare("SELECT hash FROM vectors WHERE model = ?");
    s.bind(1, row->id);
    while (s.step()) embedded_hashes.insert(s.blob(0));
  }

  // Classify: unchanged, reused by hash, to embed; and what disappeared.
  struct Pending {
    FoundFile file;
    std::string hash;
  };
  std::vector<Pending> to_embed, waiting_for_twin, reused;
  std::unordered_set<std::string> walked, pending_hashes;
  for (const auto& f : found) {
    walked.insert(f.path);
    auto k = known.find(f.path);
    const bool same = k != known.end() && k->second.size == f.size && k->second.mtime_ns == f.mtime_ns;
    if (same && k->second.failed) {
      ++summary.failed;
      continue;
    }
    std::string hash;
    if (same) {
      hash = k->second.hash;
      if (embedded_hashes.count(hash)) {
        ++summary.unchanged;
        continue;
      }
    } else {
      try {
        hash = collections::content_hash(f.path, uint64_t(f.size));
      } catch (const Error& e) {
        if (options.on_bad_file) options.on_bad_file(f.path, e.what());
        ++summary.failed;
        continue;
      }
      if (embedded_hashes.count(hash)) {
        reused.push_back({f, hash});
        continue;
      }
    }
    if (pending_hashes.insert(hash).second) to_embed.push_back({f, hash});
    else waiting_for_twin.push_back({f, hash});
  }
  std::vector<int64_t> removed_ids;
  for (const auto& [path, k] : known)
    if (!walked.count(path)) {
      // In a sharded run only this shard's files are walked: the others' rows are not this run's to remove.
      const auto root = std::find_if(roots.begin(), roots.end(), [&](const std::string& r) { return under(path, {r}); });
      if (!in_shard(path, *root, options)) continue;
      removed_ids.push_back(k.id);
    }

  // Renames, moves, copies and removals in one transaction: no decoding needed.
  if (!reused.empty() || !removed_ids.empty()) {
    Catalogue::Transaction t(catalogue);
    Statement remove = catalogue.prepare("DELETE FROM files WHERE id = ?");
    for (int64_t id : removed_ids) remove.bind(1, id).run();
    for (const auto& r : reused) upsert_file(catalogue, r.file, r.hash, 0, 0, "");
    copy_twin_sizes(catalogue);
    catalogue.bump_generation();
    t.commit();
  }
  summary.reused = int64_t(reused.size());
  summary.removed = int64_t(removed_ids.size());

  if (!to_embed.empty()) {
    std::shared_ptr<const Model> loaded = Model::load(identity.folder, placement);
    const ImageEmbedder embedder(loaded);
    EmbedOptions embed_options;
    embed_options.normalize = true;
    const int64_t total = int64_t(to_embed.size());
    if (options.progress) options.progress(0, total);
    // The next batch is read and decoded on a thread of its own while this one is embedded: decoding is
    // single-threaded work the GEMMs' threads leave room for.
    struct Batch {
      std::vector<Image> images;
      std::vector<const Pending*> decoded;
      std::vector<std::pair<const Pending*, std::string>> bad;
    };
    auto decode_batch = [&to_embed, total, &options](int64_t begin) {
      Batch b;
      for (int64_t i = begin; i < std::min(total, begin + options.batch_size); ++i) {
        const Pending& p = to_embed[size_t(i)];
        try {
          b.images.push_back(decode_image_upright(read_file(p.file.path), p.file.path));
          b.decoded.push_back(&p);
        } catch (const Error& e) {
          b.bad.push_back({&p, e.what()});
        }
      }
      return b;
    };
    std::future<Batch> next = std::async(std::launch::async, decode_batch, int64_t(0));
    for (int64_t begin = 0; begin < total; begin += options.batch_size) {
      const int64_t end = std::min(total, begin + options.batch_size);
      Batch batch = next.get();
      if (end < total) next = std::async(std::launch::async, decode_batch, end);
      const std::vector<Image>& images = batch.images;
      const std::vector<const Pending*>& decoded = batch.decoded;
      const auto& bad = batch.bad;
      EmbedResult result;
      if (!images.empty()) result = embedder.embed(images, embed_options);
      if (!row) {  // the first vectors say the model's dimension
        Catalogue::Transaction t(catalogue);
        row = catalogue.add_model(identity.name, identity.revision, images.empty() ? 0 : result.embeddings.shape()[1],
                                  pooling_name(result.pooling));
        t.commit();
      }
      if (!images.empty() && row->dim == 0) {
        catalogue.prepare("UPDATE models SET dim = ? WHERE id = ?").bind(1, result.embeddings.shape()[1]).bind(2, row->id).run();
        row->dim = result.embeddings.shape()[1];
      }
      Catalogue::Transaction t(catalogue);
      Statement insert = catalogue.prepare("INSERT OR IGNORE INTO vectors(model, hash, vector) VALUES (?, ?, ?)");
      const float* v = images.empty() ? nullptr : result.embeddings.data<float>();
      for (size_t i = 0; i < decoded.size(); ++i) {
        const Pending& p = *decoded[i];
        insert.bind(1, row->id).bind_blob(2, p.hash.data(), p.hash.size()).bind_blob(3, v + i * size_t(row->dim), size_t(row->dim) * 4).run();
        upsert_file(catalogue, p.file, p.hash, images[i].width, images[i].height, "");
      }
      for (const auto& [p, message] : bad) {
        upsert_file(catalogue, p->file, p->hash, 0, 0, message);
        if (options.on_bad_file) options.on_bad_file(p->file.path, message);
      }
      catalogue.bump_generation();
      t.commit();
      summary.embedded += int64_t(decoded.size());
      summary.failed += int64_t(bad.size());
      for (const Pending* p : decoded) embedded_hashes.insert(p->hash);
      if (options.progress) options.progress(end, total);
    }
  }
  if (!waiting_for_twin.empty()) {  // copies of content embedded in this run
    Catalogue::Transaction t(catalogue);
    for (const auto& w : waiting_for_twin)
      if (embedded_hashes.count(w.hash)) {
        upsert_file(catalogue, w.file, w.hash, 0, 0, "");
        ++summary.reused;
      } else {
        ++summary.failed;  // its twin failed to decode: so does it
        upsert_file(catalogue, w.file, w.hash, 0, 0, "same content as a file that failed to decode");
      }
    copy_twin_sizes(catalogue);
    catalogue.bump_generation();
    t.commit();
  }
  // Vectors whose content no file holds any more.
  if (summary.removed > 0) {
    Catalogue::Transaction t(catalogue);
    catalogue.exec("DELETE FROM vectors WHERE hash NOT IN (SELECT hash FROM files WHERE error IS NULL)");
    catalogue.bump_generation();
    t.commit();
  }
  if (row) {
    summary.vectors = catalogue.vector_count(row->id);
    const collections::VectorMatrix matrix = collections::load_vector_matrix(catalogue, *row);  // the search cache
    if (options.hnsw_min_vectors >= 0 && summary.vectors >= options.hnsw_min_vectors && summary.vectors > 0) {
      collections::HnswGraph::update(catalogue, *row, matrix);
      summary.hnsw = true;
    }
  }
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

}  // namespace mmx
