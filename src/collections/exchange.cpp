// Catalogues in and out: shards merged into one, vectors exported as .npy + paths (what numpy, FAISS and
// autofaiss read) and imported back.
#include <sys/stat.h>

#include <cmath>
#include <cstring>
#include <regex>
#include <sstream>

#include "mmx/collection.hpp"
#include "mmx/error.hpp"
#include "mmx/files.hpp"
#include "mmx/npy.hpp"
#include "mmx/tensor.hpp"

#include "collections/catalogue.hpp"
#include "collections/model_identity.hpp"
#include "collections/vector_index.hpp"

namespace mmx {

using collections::Catalogue;
using collections::Statement;

namespace {

// A 2-D little-endian float32 C-order .npy (format 1.0–3.0): what numpy.save writes for such an array.
std::vector<float> read_npy_matrix(const std::string& path, int64_t& rows, int64_t& cols) {
  const std::string b = read_file(path);
  if (b.size() < 10 || b.compare(0, 6, "\x93NUMPY") != 0) fail(path, ": not a .npy file");
  const int major = static_cast<unsigned char>(b[6]);
  const size_t header_len = major == 1 ? size_t(uint8_t(b[8])) | size_t(uint8_t(b[9])) << 8
                                       : size_t(uint8_t(b[8])) | size_t(uint8_t(b[9])) << 8 | size_t(uint8_t(b[10])) << 16 |
                                             size_t(uint8_t(b[11])) << 24;
  const size_t start = major == 1 ? 10 : 12;
  if (start + header_len > b.size()) fail(path, ": the .npy header is truncated");
  const std::string header = b.substr(start, header_len);
  std::smatch m;
  if (!std::regex_search(header, m, std::regex("'descr':\\s*'([<|=]f4)'")))
    fail(path, ": the array is not float32 (header ", header, ")");
  if (std::regex_search(header, m, std::regex("'fortran_order':\\s*True"))) fail(path, ": a Fortran-order array");
  if (!std::regex_search(header, m, std::regex("'shape':\\s*\\((\\d+),\\s*(\\d+)\\)")))
    fail(path, ": the array is not 2-D (header ", header, ")");
  rows = std::stoll(m[1].str());
  cols = std::stoll(m[2].str());
  const size_t bytes = size_t(rows) * size_t(cols) * 4;
  if (b.size() - start - header_len != bytes)
    fail(path, ": ", b.size() - start - header_len, " bytes of data for a ", rows, "×", cols, " float32 array");
  std::vector<float> data(size_t(rows) * size_t(cols));
  std::memcpy(data.data(), b.data() + start + header_len, bytes);
  return data;
}

}  // namespace

int64_t merge_catalogues(const std::string& db, const std::vector<std::string>& sources) {
  if (sources.empty()) usage_error("--merge needs at least one catalogue to merge");
  const collections::WriterLock lock(db);
  Catalogue target(db, true, true);
  int64_t added = 0;
  for (const auto& source_path : sources) {
    Catalogue source(source_path, false, false);
    Catalogue::Transaction t(target);
    for (const auto& m : source.models()) {
      auto mine = target.model(m.name);
      if (mine && (mine->revision != m.revision || mine->dim != m.dim))
        fail(source_path, ": its vectors of ", m.name, " are revision ", m.revision, " (", m.dim, " values); ", db,
             " holds revision ", mine->revision, " (", mine->dim, ")");
      if (!mine) mine = target.add_model(m.name, m.revision, m.dim, m.pooling);
      Statement read = source.prepare("SELECT hash, vector FROM vectors WHERE model = ?");
      read.bind(1, m.id);
      Statement write = target.prepare("INSERT OR IGNORE INTO vectors(model, hash, vector) VALUES (?, ?, ?)");
      while (read.step()) {
        const std::string hash = read.blob(0), vector = read.blob(1);
        write.bind(1, mine->id).bind_blob(2, hash.data(), hash.size()).bind_blob(3, vector.data(), vector.size()).run();
      }
    }
    Statement read = source.prepare("SELECT path, size, mtime_ns, hash, width, height, error FROM files");
    Statement write = target.prepare(
        "INSERT INTO files(path, size, mtime_ns, hash, width, height, error) VALUES (?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT(path) DO UPDATE SET size = excluded.size, mtime_ns = excluded.mtime_ns, hash = excluded.hash, "
        "width = excluded.width, height = excluded.height, error = excluded.error");
    while (read.step()) {
      const std::string hash = read.blob(3);
      write.bind(1, read.text(0)).bind(2, read.integer(1)).bind(3, read.integer(2)).bind_blob(4, hash.data(), hash.size());
      if (read.is_null(4)) write.bind_null(5).bind_null(6);
      else write.bind(5, read.integer(4)).bind(6, read.integer(5));
      if (read.is_null(6)) write.bind_null(7);
      else write.bind(7, read.text(6));
      write.run();
      ++added;
    }
    target.bump_generation();
    t.commit();
  }
  for (const auto& m : target.models()) collections::load_vector_matrix(target, m);  // the search caches
  return added;
}

int64_t export_vectors(const std::string& db, const std::string& model, const std::string& npy_path,
                       const std::string& paths_path) {
  Catalogue c(db, false, false);
  const collections::ModelRow m = c.select_model(model);
  // One row per file (copies of one content repeat its vector), in path order.
  Statement s = c.prepare(
      "SELECT f.path, v.vector FROM files f JOIN vectors v ON v.hash = f.hash AND v.model = ? WHERE f.error IS NULL "
      "ORDER BY f.path");
  s.bind(1, m.id);
  std::vector<float> data;
  std::string paths;
  int64_t rows = 0;
  while (s.step()) {
    const std::string path = s.text(0);
    if (path.find('\n') != std::string::npos) fail(db, ": the path '", path, "' holds a line break; the paths file cannot list it");
    paths += path + "\n";
    const auto* v = static_cast<const float*>(s.blob_data(1));
    data.insert(data.end(), v, v + m.dim);
    ++rows;
  }
  const Tensor t = Tensor::from_external(data.data(), {rows, m.dim}, DType::F32, nullptr);
  StagedOutputs outputs;
  write_npy(outputs.temporary_for(npy_path), t);
  write_file_atomically(outputs.temporary_for(paths_path), paths);
  outputs.commit();
  return rows;
}

int64_t import_vectors(const std::string& db, const std::string& model, const std::string& npy_path,
                       const std::string& paths_path) {
  if (model.empty()) usage_error("--import needs --model: the name of the model that made the vectors");
  int64_t rows = 0, dim = 0;
  std::vector<float> data = read_npy_matrix(npy_path, rows, dim);
  std::vector<std::string> paths;
  {
    std::istringstream lines(read_file(paths_path));
    for (std::string line; std::getline(lines, line);)
      if (!line.empty()) paths.push_back(line);
  }
  if (int64_t(paths.size()) != rows)
    fail(paths_path, ": ", paths.size(), " paths for the ", rows, " vectors of ", npy_path);
  const collections::WriterLock lock(db);
  Catalogue c(db, true, true);
  // The model's identity where it can be found (a later `mmx index` with it then adds to these vectors).
  std::string name = model, revision = "imported";
  try {
    const collections::ModelIdentity id = collections::identify_model(model);
    name = id.name;
    revision = id.revision;
  } catch (const Error&) {
  }
  auto m = c.model(name);
  if (m && m->dim != dim) fail(db, ": vectors of ", model, " have ", m->dim, " values; ", npy_path, " has ", dim);
  Catalogue::Transaction t(c);
  if (!m) m = c.add_model(name, revision, dim, "imported");
  Statement vec = c.prepare("INSERT OR REPLACE INTO vectors(model, hash, vector) VALUES (?, ?, ?)");
  Statement file = c.prepare(
      "INSERT INTO files(path, size, mtime_ns, hash) VALUES (?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET "
      "size = excluded.size, mtime_ns = excluded.mtime_ns, hash = excluded.hash, error = NULL");
  for (int64_t r = 0; r < rows; ++r) {
    const std::string& path = paths[size_t(r)];
    struct stat st {};
    if (stat(path.c_str(), &st) != 0) fail(paths_path, ": line ", r + 1, ": no such file ", path);
    const std::string hash = collections::content_hash(path, uint64_t(st.st_size));
    // Normalised again: what was exported is, what another tool wrote may not be.
    float* v = data.data() + size_t(r) * size_t(dim);
    double norm = 0;
    for (int64_t i = 0; i < dim; ++i) norm += double(v[i]) * v[i];
    if (!(norm > 0) || !std::isfinite(norm)) fail(npy_path, ": row ", r, " is zero or not finite");
    for (int64_t i = 0; i < dim; ++i) v[i] = float(v[i] / std::sqrt(norm));
    vec.bind(1, m->id).bind_blob(2, hash.data(), hash.size()).bind_blob(3, v, size_t(dim) * 4).run();
    file.bind(1, path).bind(2, int64_t(st.st_size)).bind(3, int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec)
        .bind_blob(4, hash.data(), hash.size()).run();
  }
  c.bump_generation();
  t.commit();
  collections::load_vector_matrix(c, *m);
  return rows;
}

}  // namespace mmx
