// SQLite statements with errors that name the catalogue, the schema, and the writer's lock.
#include "collections/catalogue.hpp"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>

#include "mmx/error.hpp"

namespace mmx::collections {

namespace {

constexpr int kSchemaVersion = 1;

const char* kSchema = R"(
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS models(
  id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, revision TEXT NOT NULL, dim INTEGER NOT NULL,
  pooling TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files(
  id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
  hash BLOB NOT NULL, width INTEGER, height INTEGER, error TEXT);
CREATE INDEX IF NOT EXISTS files_by_hash ON files(hash);
CREATE TABLE IF NOT EXISTS vectors(
  id INTEGER PRIMARY KEY, model INTEGER NOT NULL REFERENCES models(id), hash BLOB NOT NULL,
  vector BLOB NOT NULL, UNIQUE(model, hash));
)";

[[noreturn]] void sqlite_fail(sqlite3* db, int rc, const std::string& path, const std::string& what) {
  const std::string message = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  const int primary = rc & 0xff;
  if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED)
    throw Error(ErrorKind::Runtime, str(path, ": the catalogue is locked by another process (", what, ": ", message, ")"),
                "wait for the other mmx index to finish, or index into another --db");
  if (primary == SQLITE_READONLY)
    throw Error(ErrorKind::Runtime, str(path, ": the catalogue is read-only (", what, ": ", message, ")"),
                "index into a catalogue you can write, or search it (searching only reads)");
  if (primary == SQLITE_FULL) fail(path, ": the disk is full (", what, "); nothing of the open batch was kept");
  if (primary == SQLITE_NOTADB || primary == SQLITE_CORRUPT)
    fail(path, ": not an mmx catalogue (", message, ")");
  if (primary == SQLITE_CANTOPEN) fail(path, ": cannot open the catalogue (", message, ")");
  if (what == message) fail(path, ": ", message);
  fail(path, ": ", what, ": ", message);
}

}  // namespace

Statement::Statement(sqlite3* db, const std::string& sql, const std::string& db_path) : db_(db), db_path_(db_path) {
  const int rc = sqlite3_prepare_v2(db, sql.c_str(), -1, &statement_, nullptr);
  if (rc != SQLITE_OK) sqlite_fail(db, rc, db_path_, "preparing a query");
}
Statement::~Statement() { sqlite3_finalize(statement_); }
Statement& Statement::bind(int i, int64_t v) {
  sqlite3_bind_int64(statement_, i, v);
  return *this;
}
Statement& Statement::bind(int i, double v) {
  sqlite3_bind_double(statement_, i, v);
  return *this;
}
Statement& Statement::bind(int i, const std::string& text) {
  sqlite3_bind_text(statement_, i, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
  return *this;
}
Statement& Statement::bind_blob(int i, const void* data, size_t size) {
  sqlite3_bind_blob(statement_, i, data, static_cast<int>(size), SQLITE_TRANSIENT);
  return *this;
}
Statement& Statement::bind_null(int i) {
  sqlite3_bind_null(statement_, i);
  return *this;
}
bool Statement::step() {
  const int rc = sqlite3_step(statement_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  sqlite3_reset(statement_);
  sqlite_fail(db_, rc, db_path_, "running a query");
}
void Statement::run() {
  while (step()) {
  }
  reset();
}
void Statement::reset() {
  sqlite3_reset(statement_);
  sqlite3_clear_bindings(statement_);
}
int64_t Statement::integer(int c) const { return sqlite3_column_int64(statement_, c); }
double Statement::real(int c) const { return sqlite3_column_double(statement_, c); }
std::string Statement::text(int c) const {
  const auto* p = sqlite3_column_text(statement_, c);
  return p ? std::string(reinterpret_cast<const char*>(p), size_t(sqlite3_column_bytes(statement_, c))) : std::string();
}
std::string Statement::blob(int c) const {
  const void* p = sqlite3_column_blob(statement_, c);
  return p ? std::string(static_cast<const char*>(p), size_t(sqlite3_column_bytes(statement_, c))) : std::string();
}
const void* Statement::blob_data(int c) const { return sqlite3_column_blob(statement_, c); }
int Statement::blob_size(int c) const { return sqlite3_column_bytes(statement_, c); }
bool Statement::is_null(int c) const { return sqlite3_column_type(statement_, c) == SQLITE_NULL; }

Catalogue::Catalogue(const std::string& path, bool writable, bool create) : path_(path) {
  if (!create && access(path.c_str(), F_OK) != 0)
    throw Error(ErrorKind::Usage, str(path, ": no such catalogue"), "create it with mmx index DIR --db " + path);
  const int flags = (writable ? SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0) : SQLITE_OPEN_READONLY) |
                    SQLITE_OPEN_NOMUTEX;
  const int rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string message = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    sqlite3_close(db_);
    db_ = nullptr;
    if ((rc & 0xff) == SQLITE_READONLY || (writable && access(path.c_str(), W_OK) != 0 && errno == EACCES))
      throw Error(ErrorKind::Runtime, str(path, ": the catalogue is read-only (", message, ")"),
                  "index into a catalogue you can write");
    fail(path, ": cannot open the catalogue (", message, ")");
  }
  sqlite3_busy_timeout(db_, 5000);  // a reader meeting a checkpoint waits; a held writer lock fails after 5 s
  try {
    // An empty file is a new catalogue; any other database must carry mmx's schema marker.
    bool empty = false;
    {
      Statement tables = prepare("SELECT count(*) FROM sqlite_master");
      tables.step();
      empty = tables.integer(0) == 0;
    }
    if (empty) {
      if (!writable) fail(path, ": not an mmx catalogue (an empty database)");
      exec("PRAGMA journal_mode=WAL");
      exec("PRAGMA synchronous=NORMAL");  // WAL: a crash loses at most the last commits, never consistency
      Transaction t(*this);
      exec(kSchema);
      set_meta("format", "mmx catalogue");
      set_meta("schema_version", std::to_string(kSchemaVersion));
      set_meta("generation", "0");
      t.commit();
    } else {
      Statement marker = prepare("SELECT value FROM meta WHERE key = 'format'");
      if (!marker.step() || marker.text(0) != "mmx catalogue") fail(path, ": not an mmx catalogue");
      const auto version = meta("schema_version");
      if (!version || std::stoi(*version) > kSchemaVersion)
        fail(path, ": catalogue schema ", version.value_or("?"), " is newer than this mmx reads (", kSchemaVersion, ")");
      if (writable) exec("PRAGMA synchronous=NORMAL");
    }
  } catch (const Error& e) {
    sqlite3_close(db_);
    db_ = nullptr;
    if (std::string(e.what()).find("no such table") != std::string::npos) fail(path, ": not an mmx catalogue");
    throw;
  }
}

Catalogue::~Catalogue() { sqlite3_close(db_); }

void Catalogue::exec(const std::string& sql) const {
  char* message = nullptr;
  const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &message);
  if (rc != SQLITE_OK) {
    const std::string text = message ? message : "";
    sqlite3_free(message);
    sqlite_fail(db_, rc, path_, text);
  }
}

Catalogue::Transaction::Transaction(const Catalogue& catalogue) : catalogue_(catalogue) {
  catalogue_.exec("BEGIN IMMEDIATE");
}
Catalogue::Transaction::~Transaction() {
  if (!done_) sqlite3_exec(catalogue_.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
}
void Catalogue::Transaction::commit() {
  catalogue_.exec("COMMIT");
  done_ = true;
}

std::vector<ModelRow> Catalogue::models() const {
  std::vector<ModelRow> out;
  Statement s = prepare("SELECT id, name, revision, dim, pooling FROM models ORDER BY id");
  while (s.step()) out.push_back({s.integer(0), s.text(1), s.text(2), s.text(4), s.integer(3)});
  return out;
}

std::optional<ModelRow> Catalogue::model(const std::string& name) const {
  for (auto& m : models())
    if (m.name == name) return m;
  return std::nullopt;
}

ModelRow Catalogue::add_model(const std::string& name, const std::string& revision, int64_t dim,
                              const std::string& pooling) {
  prepare("INSERT INTO models(name, revision, dim, pooling) VALUES (?, ?, ?, ?)")
      .bind(1, name)
      .bind(2, revision)
      .bind(3, dim)
      .bind(4, pooling)
      .run();
  return *model(name);
}

ModelRow Catalogue::select_model(const std::string& model) const {
  const auto all = models();
  std::string names;
  for (const auto& m : all) names += str(names.empty() ? "" : ", ", m.name);
  if (all.empty()) fail(path_, ": the catalogue holds no vectors yet (index a folder into it first)");
  if (model.empty()) {
    if (all.size() > 1) usage_error(path_, ": the catalogue holds vectors of ", all.size(), " models (", names, "): pass --model");
    return all.front();
  }
  std::error_code ec;
  const std::string canonical =
      std::filesystem::is_directory(model, ec) ? std::filesystem::weakly_canonical(model, ec).string() : model;
  for (const auto& m : all)
    if (m.name == model || m.name == canonical) return m;
  throw Error(ErrorKind::Usage, str(path_, ": the catalogue was made with another model: it holds vectors of ", names, ", not ", model),
              "search with the model that indexed it, or index the folders with this one first");
}

std::optional<std::string> Catalogue::meta(const std::string& key) const {
  Statement s = prepare("SELECT value FROM meta WHERE key = ?");
  s.bind(1, key);
  if (!s.step()) return std::nullopt;
  return s.text(0);
}

void Catalogue::set_meta(const std::string& key, const std::string& value) const {
  prepare("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
      .bind(1, key)
      .bind(2, value)
      .run();
}

int64_t Catalogue::generation() const { return std::stoll(meta("generation").value_or("0")); }
void Catalogue::bump_generation() const { set_meta("generation", std::to_string(generation() + 1)); }

int64_t Catalogue::vector_count(int64_t model_id) const {
  Statement s = prepare("SELECT count(*) FROM vectors WHERE model = ?");
  s.bind(1, model_id);
  s.step();
  return s.integer(0);
}

WriterLock::WriterLock(const std::string& db_path) {
  const std::string path = db_path + ".lock";
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    if (errno == EACCES || errno == EROFS)
      throw Error(ErrorKind::Runtime, str(db_path, ": the catalogue is read-only (cannot create ", path, ": ", std::strerror(errno), ")"),
                  "index into a catalogue in a folder you can write");
    fail(path, ": cannot create the catalogue's lock file: ", std::strerror(errno));
  }
  if (flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd_);
    fd_ = -1;
    throw Error(ErrorKind::Runtime, str(db_path, ": another mmx index is running on this catalogue"),
                "wait for it to finish (runs on one catalogue are serialised, never interleaved)");
  }
}
WriterLock::~WriterLock() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the flock
}

std::string hex(const std::string& bytes) {
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) out += {kHex[c >> 4], kHex[c & 15]};
  return out;
}

std::string content_hash(const std::string& path, uint64_t size) {
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "rb"), std::fclose);
  if (!file) fail(path, ": cannot open: ", std::strerror(errno));
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
  unsigned char size_bytes[8];
  for (int i = 0; i < 8; ++i) size_bytes[i] = static_cast<unsigned char>(size >> (8 * i));
  EVP_DigestUpdate(ctx.get(), size_bytes, 8);
  constexpr uint64_t kHead = 1 << 20, kTail = 1 << 10;
  std::string buffer(size_t(std::min(size, kHead)), '\0');
  if (std::fread(buffer.data(), 1, buffer.size(), file.get()) != buffer.size()) fail(path, ": cannot read (shorter than its size)");
  EVP_DigestUpdate(ctx.get(), buffer.data(), buffer.size());
  if (size > kHead) {
    const uint64_t tail = std::min(kTail, size - kHead);
    buffer.resize(size_t(tail));
    if (fseeko(file.get(), off_t(size - tail), SEEK_SET) != 0 ||
        std::fread(buffer.data(), 1, buffer.size(), file.get()) != buffer.size())
      fail(path, ": cannot read its end");
    EVP_DigestUpdate(ctx.get(), buffer.data(), buffer.size());
  }
  unsigned char digest[32];
  unsigned int length = 0;
  EVP_DigestFinal_ex(ctx.get(), digest, &length);
  return std::string(reinterpret_cast<char*>(digest), length);
}

}  // namespace mmx::collections
