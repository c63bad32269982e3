// The catalogue (src/collections/catalogue.cpp): one SQLite file in WAL mode holding the indexed files
// (path, size, mtime, content hash) and, per model, one normalised vector per distinct content. SQLite
// (Debian's libsqlite3) because a collection is updated by one writer while servers read it: transactions
// make an interrupted run lose at most its open batch, WAL lets readers go on during a write, and the
// file is what rclip and immich's users already back up and inspect.
#pragma once
#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mmx::collections {

// A prepared statement: bind by position (from 1), step, read columns.
class Statement {
 public:
  Statement(sqlite3* db, const std::string& sql, const std::string& db_path);
  ~Statement();
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  Statement& bind(int i, int64_t v);
  Statement& bind(int i, double v);
  Statement& bind(int i, const std::string& text);
  Statement& bind_blob(int i, const void* data, size_t size);
  Statement& bind_null(int i);
  bool step();  // true while a row is available
  void run();   // step to the end, then reset
  void reset();
  int64_t integer(int column) const;
  double real(int column) const;
  std::string text(int column) const;
  std::string blob(int column) const;
  const void* blob_data(int column) const;
  int blob_size(int column) const;
  bool is_null(int column) const;

 private:
  sqlite3* db_;
  sqlite3_stmt* statement_ = nullptr;
  std::string db_path_;
};

struct ModelRow {
  int64_t id = 0;
  std::string name, revision, pooling;
  int64_t dim = 0;
};

class Catalogue {
 public:
  // Opens (creating it and its schema when `create`) the catalogue at `path`; read-only opens never
  // write. Errors name the path: not a catalogue, another program's database, locked, read-only.
  Catalogue(const std::string& path, bool writable, bool create);
  ~Catalogue();
  Catalogue(const Catalogue&) = delete;
  Catalogue& operator=(const Catalogue&) = delete;

  sqlite3* handle() const { return db_; }
  const std::string& path() const { return path_; }
  Statement prepare(const std::string& sql) const { return Statement(db_, sql, path_); }
  void exec(const std::string& sql) const;

  // BEGIN IMMEDIATE ... COMMIT; rolled back when destroyed uncommitted.
  class Transaction {
   public:
    explicit Transaction(const Catalogue& catalogue);
    ~Transaction();
    void commit();

   private:
    const Catalogue& catalogue_;
    bool done_ = false;
  };

  std::vector<ModelRow> models() const;
  std::optional<ModelRow> model(const std::string& name) const;
  // The model a search or an export names: `model` (a Hub id, or a folder by its canonical path), or the
  // only one when empty. Usage errors list the models the catalogue holds.
  ModelRow select_model(const std::string& model) const;
  ModelRow add_model(const std::string& name, const std::string& revision, int64_t dim, const std::string& pooling);
  // A counter bumped by every committed change of vectors: caches (the vector matrix, the HNSW graph)
  // record the generation they were built from.
  int64_t generation() const;
  void bump_generation() const;
  std::optional<std::string> meta(const std::string& key) const;
  void set_meta(const std::string& key, const std::string& value) const;
  int64_t vector_count(int64_t model_id) const;

 private:
  sqlite3* db_ = nullptr;
  std::string path_;
};

// A lock held for a whole `mmx index` run (flock on "<db>.lock"): a second run on the same catalogue fails
// at once naming it, instead of interleaving its batches with the first's.
class WriterLock {
 public:
  explicit WriterLock(const std::string& db_path);
  ~WriterLock();
  WriterLock(const WriterLock&) = delete;
  WriterLock& operator=(const WriterLock&) = delete;

 private:
  int fd_ = -1;
};

// SHA-256 of the file's size, its first MiB and its last KiB (rclip's rule, with the size): content that
// survives renames and moves, read in two short reads however large the file. 32 bytes.
std::string content_hash(const std::string& path, uint64_t size);
// Bytes as lowercase hexadecimal (content hashes in names, revisions).
std::string hex(const std::string& bytes);

}  // namespace mmx::collections
