// Photo collections: ranking against transformers' CLIP features (expected/clip-tiny.safetensors),
// incremental indexing (unchanged files unread, renames by hash, removals), models and revisions, the
// writer lock, an index killed mid-run, shards and merge, .npy export and import, HNSW against exact,
// rclip's query language, and bad input through the CLI.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>
#include <thread>

#include "cli/run_mmx.hpp"
#include "collections/catalogue.hpp"
#include "collections/vector_index.hpp"
#include "mmx/collection.hpp"
#include "mmx/error.hpp"
#include "mmx/files.hpp"
#include "mmx/image.hpp"
#include "mmx/safetensors.hpp"
#include "test_util.hpp"

namespace mmx {
namespace {

namespace fs = std::filesystem;

const char* kLabImages[] = {"astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg"};
const char* kLabTexts[] = {"Cat with paint", "rock statue", "frogs on leaf", "jellyfish",
                           "Cats don't usually", "like water", "but this one likes paint", "quite a lot"};

std::string clip() { return test::data("models/clip-tiny"); }

std::string lab_folder(const test::TempDir& dir) {
  const std::string photos = dir.file("photos");
  fs::create_directories(photos);
  for (const char* f : kLabImages) fs::copy_file(test::data(std::string("images/") + f), photos + "/" + f);
  return photos;
}

IndexSummary index(const std::string& db, const std::string& folder, const std::string& model = clip(), IndexOptions o = {}) {
  return index_folders(db, {folder}, model, test::placement(), o);
}

// Distinct images (random pixels from a seed) written as PNG: a collection of any size.
void write_random_photos(const std::string& folder, int count, int first_seed = 0) {
  fs::create_directories(folder);
  for (int i = 0; i < count; ++i) {
    std::mt19937 rng(uint32_t(first_seed + i));
    Image image;
    image.width = 40;
    image.height = 30;
    image.rgb.resize(40 * 30 * 3);
    for (auto& p : image.rgb) p = uint8_t(rng() & 0xff);
    write_file_atomically(folder + "/random_" + std::to_string(first_seed + i) + ".png", encode_png(image));
  }
}

// ---- Ranking parity: the order transformers' get_text_features / get_image_features and cosine give.

TEST(Collections, TextToImageRankingMatchesTransformers) {
  test::TempDir dir;
  const std::string db = dir.file("c.db");
  const IndexSummary s = index(db, lab_folder(dir));
  ASSERT_EQ(s.embedded, 4);
  const auto expected = SafetensorsFile::open(test::data("expected/clip-tiny.safetensors"));
  const Tensor texts = expected.get("text_embeds_normalized"), images = expected.get("image_embeds_normalized");
  const auto collection = Collection::open(db);
  SearchOptions o;
  o.top_k = 10;
  for (int t = 0; t < 8; ++t) {
    std::vector<std::pair<float, std::string>> reference;
    for (int i = 0; i < 4; ++i) {
      float dot = 0;
      for (int d = 0; d < 16; ++d) dot += texts.data<float>()[t * 16 + d] * images.data<float>()[i * 16 + d];
      reference.push_back({dot, kLabImages[i]});
    }
    std::sort(reference.begin(), reference.end(), std::greater<>());
    for (int i = 0; i + 1 < 4; ++i)  // the order is well defined at the parity bound
      ASSERT_GT(reference[i].first - reference[i + 1].first, 2e-5) << kLabTexts[t];
    const auto hits = collection->search({{QueryTerm::Kind::Text, kLabTexts[t], 1.f}}, o);
    ASSERT_EQ(hits.size(), 4u);
    for (int i = 0; i < 4; ++i) {
      EXPECT_EQ(fs::path(hits[i].path).filename().string(), reference[i].second) << kLabTexts[t] << " rank " << i;
      EXPECT_NEAR(hits[i].score, reference[i].first, 1e-5) << kLabTexts[t] << " rank " << i;
    }
  }
}

TEST(Collections, ImageToImageRankingMatchesTransformers) {
  test::TempDir dir;
  const std::string db = dir.file("c.db"), photos = lab_folder(dir);
  index(db, photos);
  const Tensor images = SafetensorsFile::open(test::data("expected/clip-tiny.safetensors")).get("image_embeds_normalized");
  const auto collection = Collection::open(db);
  for (int q = 0; q < 4; ++q) {
    std::vector<std::pair<float, std::string>> reference;
    for (int i = 0; i < 4; ++i) {
      float dot = 0;
      for (int d = 0; d < 16; ++d) dot += images.data<float>()[q * 16 + d] * images.data<float>()[i * 16 + d];
      reference.push_back({dot, kLabImages[i]});
    }
    std::sort(reference.begin(), reference.end(), std::greater<>());
    // By the image file (embedded again) and by the catalogued vector: the same order.
    for (auto kind : {QueryTerm::Kind::Image, QueryTerm::Kind::StoredFile}) {
      const auto hits = collection->search({{kind, photos + "/" + kLabImages[q], 1.f}}, {});
      ASSERT_EQ(hits.size(), 4u);
      for (int i = 0; i < 4; ++i) {
        EXPECT_EQ(fs::path(hits[i].path).filename().string(), reference[i].second) << kLabImages[q] << " rank " << i;
        EXPECT_NEAR(hits[i].score, reference[i].first, 1e-5);
      }
    }
  }
}

TEST(Collections, WeightedQueriesCombineNormalisedTerms) {
  test::TempDir dir;
  const std::string db = dir.file("c.db"), photos = lab_folder(dir);
  index(db, photos);
  const auto c = Collection::open(db);
  const auto a = c->query_vector({{QueryTerm::Kind::Text, "Cat with paint", 1.f}});
  const auto b = c->query_vector({{QueryTerm::Kind::Text, "jellyfish", 1.f}});
  const auto mix = c->query_vector(parse_query({"2:Cat with paint", "-", "jellyfish"}));
  std::vector<float> want(a.size());
  double norm = 0;
  for (size_t i = 0; i < a.size(); ++i) norm += double(want[i] = 2 * a[i] - b[i]) * want[i];
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(mix[i], want[i] / std::sqrt(norm), 1e-6);
}

TEST(Collections, QueryLanguageIsRclips) {
  test::TempDir dir;
  const std::string photo = dir.file("pool.jpg");
  fs::copy_file(test::data("images/rocket.jpg"), photo);
  const auto terms = parse_query({"2:golden retriever", "+", photo, "-", "fruit"});
  ASSERT_EQ(terms.size(), 3u);
  EXPECT_EQ(terms[0].kind, QueryTerm::Kind::Text);
  EXPECT_EQ(terms[0].value, "golden retriever");
  EXPECT_EQ(terms[0].weight, 2.f);
  EXPECT_EQ(terms[1].kind, QueryTerm::Kind::Image);
  EXPECT_EQ(terms[2].weight, -1.f);
  const auto one = parse_query({"cat + 0.5:dog - sofa"});  // one quoted string
  ASSERT_EQ(one.size(), 3u);
  EXPECT_EQ(one[1].value, "dog");
  EXPECT_EQ(one[1].weight, 0.5f);
  EXPECT_EQ(one[2].weight, -1.f);
  EXPECT_EQ(parse_query({"10:30 train"})[0].value, "30 train");  // a number before ':' is a weight
  for (const auto& bad : std::vector<std::vector<std::string>>{{"cat", "+"}, {"+", "+", "cat"}, {"cat", "dog"}, {}})
    EXPECT_THROW(parse_query(bad), Error);
}

// ---- Incremental indexing

TEST(Collections, ReindexReadsOnlyWhatChanged) {
  test::TempDir dir;
  const std::string db = dir.file("c.db"), photos = lab_folder(dir);
  index(db, photos);
  // Unchanged files are not read: overwrite one with garbage of the same size and restore its mtime.
  const std::string coffee = photos + "/coffee.png";
  struct stat before {};
  stat(coffee.c_str(), &before);
  const std::string original = read_file(coffee);
  {
    std::ofstream(coffee, std::ios::binary) << std::string(original.size(), 'x');
    const timespec times[2] = {before.st_atim, before.st_mtim};
    utimensat(AT_FDCWD, coffee.c_str(), times, 0);
  }
  IndexSummary s = index(db, photos);
  EXPECT_EQ(s.unchanged, 4);
  EXPECT_EQ(s.embedded + s.failed, 0);
  std::ofstream(coffee, std::ios::binary) << original;  // back, with a new mtime: changed → read again
  s = index(db, photos);
  EXPECT_EQ(s.unchanged, 3);
  EXPECT_EQ(s.embedded, 0);  // same content as catalogued: its vector is reused
  EXPECT_EQ(s.reused, 1);

  // A rename and a move into a subfolder: recognised by hash, not decoded.
  fs::create_directories(photos + "/2024");
  fs::rename(photos + "/rocket.jpg", photos + "/2024/launch.jpg");
  fs::rename(photos + "/chelsea.png", photos + "/cat.png");
  s = index(db, photos);
  EXPECT_EQ(s.reused, 2);
  EXPECT_EQ(s.removed, 2);
  EXPECT_EQ(s.embedded, 0);
  EXPECT_EQ(s.vectors, 4);
  const auto hits = Collection::open(db)->search({{QueryTerm::Kind::Text, "rock statue", 1.f}}, {});
  std::vector<std::string> names;
  for (const auto& h : hits) names.push_back(fs::path(h.path).filename().string());
  EXPECT_NE(std::find(names.begin(), names.end(), "launch.jpg"), names.end());
  EXPECT_EQ(std::find(names.begin(), names.end(), "rocket.jpg"), names.end());

  // A deleted file: its row and (no other file holding it) its vector go.
  fs::remove(photos + "/cat.png");
  s = index(db, photos);
  EXPECT_EQ(s.removed, 1);
  EXPECT_EQ(s.vectors, 3);
  EXPECT_EQ(Collection::open(db)->size(), 3);
}

TEST(Collections, WalkSkipsHiddenFollowsLinksOnceAndCountsBadFiles) {
  test::TempDir dir;
  const std::string photos = lab_folder(dir), db = dir.file("c.db");
  fs::create_directories(photos + "/.thumbnails");
  fs::copy_file(test::data("images/horse.png"), photos + "/.thumbnails/horse.png");
  fs::create_directories(photos + "/formats");
  for (const char* f : {"chelsea_lossy.webp", "chelsea.gif", "chelsea_lzw.tiff", "chelsea_24.bmp"})
    fs::copy_file(test::data(std::string("images/formats/") + f), photos + "/formats/" + f);
  fs::create_directory_symlink("..", photos + "/formats/loop");  // a loop: walked once
  fs::copy_file(test::data("images/truncated.jpg"), photos + "/truncated.jpg");
  std::ofstream(photos + "/notes.txt") << "not an image";
  std::vector<std::string> bad;
  IndexOptions o;
  o.on_bad_file = [&](const std::string& path, const std::string&) { bad.push_back(path); };
  IndexSummary s = index(db, photos, clip(), o);
  EXPECT_EQ(s.files, 9);
  EXPECT_EQ(s.embedded, 8);
  EXPECT_EQ(s.failed, 1);
  ASSERT_EQ(bad.size(), 1u);
  EXPECT_NE(bad[0].find("truncated.jpg"), std::string::npos);
  bad.clear();
  s = index(db, photos, clip(), o);  // reported once: an unchanged bad file is counted, not retried
  EXPECT_EQ(s.failed, 1);
  EXPECT_TRUE(bad.empty());
  o.include_hidden = true;
  s = index(db, photos, clip(), o);
  EXPECT_EQ(s.embedded, 1);  // the hidden horse
}

TEST(Collections, UprightPhotosAreIndexedAsSeen) {
  test::TempDir dir;
  const std::string photos = dir.file("p"), db = dir.file("c.db");
  fs::create_directories(photos);
  fs::copy_file(test::data("images/rocket_exif_rot90.jpg"), photos + "/portrait.jpg");
  index(db, photos);
  const auto c = Collection::open(db);
  // The stored vector is the upright image's, not the sideways stored pixels'.
  const std::string bytes = read_file(photos + "/portrait.jpg");
  const auto upright = c->query_vector({{QueryTerm::Kind::ImageBytes, encode_png(decode_image_upright(bytes, "p")), 1.f}});
  const auto sideways = c->query_vector({{QueryTerm::Kind::ImageBytes, encode_png(decode_image(bytes, "p")), 1.f}});
  const auto stored = c->query_vector({{QueryTerm::Kind::StoredFile, photos + "/portrait.jpg", 1.f}});
  float up = 0, side = 0;
  for (size_t i = 0; i < stored.size(); ++i) up += stored[i] * upright[i], side += stored[i] * sideways[i];
  EXPECT_NEAR(up, 1.f, 1e-5);
  EXPECT_LT(side, up - 1e-4);
}

// ---- Models, revisions, locks, interruptions

TEST(Collections, SecondModelHasItsOwnVectorsAndRevisionsAreChecked) {
  test::TempDir dir;
  const std::string db = dir.file("c.db"), photos = lab_folder(dir);
  index(db, photos);
  const IndexSummary vit = index(db, photos, test::data("models/vit-tiny"));
  EXPECT_EQ(vit.embedded, 4);  // its own vectors, though the files are catalogued
  EXPECT_EQ(vit.unchanged, 0);
  try {
    Collection::open(db);
    ADD_FAILURE() << "two models, none named";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Usage);
    EXPECT_NE(std::string(e.what()).find("--model"), std::string::npos) << e.what();
  }
  EXPECT_EQ(Collection::open(db, test::data("models/vit-tiny"))->size(), 4);
  try {
    Collection::open(db, test::data("models/bert-tiny"));
    ADD_FAILURE() << "searched with a model that made no vectors";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("another model"), std::string::npos) << e.what();
  }
  // The same folder with other weights is another revision: refused.
  const std::string copy = dir.file("clip-copy");
  fs::copy(clip(), copy, fs::copy_options::recursive);  // symbolic links followed: a folder of its own
  const std::string db2 = dir.file("c2.db");
  index(db2, photos, copy);
  std::string config = read_file(copy + "/config.json");
  config.insert(config.rfind('}'), " ");
  write_file_atomically(copy + "/config.json", config);
  try {
    index(db2, photos, copy);
    ADD_FAILURE() << "indexed with a changed model";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("revision"), std::string::npos) << e.what();
  }
}

TEST(Collections, ConcurrentIndexRunsAreRefused) {
  test::TempDir dir;
  const std::string db = dir.file("c.db"), photos = lab_folder(dir);
  const collections::WriterLock held(db);
  const auto r = test::run({"index", photos, "--model", clip(), "--db", db});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("another mmx index is running"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(db), std::string::npos) << r.err;
}

TEST(Collections, KilledIndexLosesAtMostItsBatchAndResumes) {
  test::TempDir dir;
  const std::string photos = dir.file("p"), db = dir.file("c.db");
  write_random_photos(photos, 300);
  const std::string cmd = test::quote(MMX_BINARY) + " index " + photos + " --model " + clip() + " --db " + db +
                          " --batch-size 4 --quiet >/dev/null 2>&1 & echo $!";
  FILE* p = popen(cmd.c_str(), "r");
  int pid = 0;
  ASSERT_EQ(fscanf(p, "%d", &pid), 1);
  pclose(p);
  // Kill it (SIGKILL: no clean-up) once some batches are committed.
  int64_t seen = 0;
  for (int i = 0; i < 400 && seen < 8; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
    sqlite3* h = nullptr;
    if (sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
      sqlite3_stmt* s = nullptr;
      if (sqlite3_prepare_v2(h, "SELECT count(*) FROM vectors", -1, &s, nullptr) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
        seen = sqlite3_column_int64(s, 0);
      sqlite3_finalize(s);
    }
    sqlite3_close(h);
  }
  kill(pid, SIGKILL);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_GE(seen, 8) << "the run committed no batch in 10 s";
  {
    const collections::Catalogue c(db, false, false);
    auto check = c.prepare("PRAGMA integrity_check");
    ASSERT_TRUE(check.step());
    EXPECT_EQ(check.text(0), "ok");
    // Every catalogued file has its vector: a batch is all or nothing.
    auto orphans = c.prepare("SELECT count(*) FROM files WHERE error IS NULL AND hash NOT IN (SELECT hash FROM vectors)");
    orphans.step();
    EXPECT_EQ(orphans.integer(0), 0);
  }
  const IndexSummary s = index(db, photos);  // resumes: what was committed is not embedded again
  EXPECT_EQ(s.embedded + s.unchanged, 300);
  EXPECT_GE(s.unchanged, 8);
  EXPECT_EQ(s.vectors, 300);
}

// ---- Shards, merge, export, import

TEST(Collections, ShardsMergeIntoTheSingleRunsCatalogue) {
  test::TempDir dir;
  const std::string photos = dir.file("p");
  write_random_photos(photos, 24);
  index(dir.file("all.db"), photos);
  int64_t total = 0;
  for (int i = 0; i < 3; ++i) {
    IndexOptions o;
    o.shard_index = i;
    o.shard_count = 3;
    const IndexSummary s = index(dir.file("part" + std::to_string(i) + ".db"), photos, clip(), o);
    EXPECT_GT(s.embedded, 0);
    EXPECT_LT(s.embedded, 24);
    total += s.embedded;
  }
  EXPECT_EQ(total, 24);  // each file in exactly one shard
  EXPECT_EQ(merge_catalogues(dir.file("merged.db"), {dir.file("part0.db"), dir.file("part1.db"), dir.file("part2.db")}), 24);
  // Same files, same vectors. The shards embedded in smaller batches than the single run: bit-equal on
  // mmx's GEMM, whose rows do not depend on the batch; oneDNN's sgemm (MMX_GEMM=dnnl) sums in another
  // order for another batch size, so the vectors are compared within 1e-6.
  export_vectors(dir.file("all.db"), "", dir.file("a.npy"), dir.file("a.txt"));
  export_vectors(dir.file("merged.db"), "", dir.file("m.npy"), dir.file("m.txt"));
  EXPECT_EQ(read_file(dir.file("a.txt")), read_file(dir.file("m.txt")));
  const std::string a = read_file(dir.file("a.npy")), m = read_file(dir.file("m.npy"));
  ASSERT_EQ(a.size(), m.size());
  const size_t header = a.size() - 24 * 16 * 4;
  EXPECT_EQ(a.substr(0, header), m.substr(0, header));
  for (size_t i = 0; i < 24 * 16; ++i) {
    float x, y;
    std::memcpy(&x, a.data() + header + 4 * i, 4);
    std::memcpy(&y, m.data() + header + 4 * i, 4);
    ASSERT_NEAR(x, y, 1e-6) << "value " << i;
  }
  // An index of the merged catalogue finds everything unchanged.
  const IndexSummary again = index(dir.file("merged.db"), photos);
  EXPECT_EQ(again.unchanged, 24);
}

TEST(Collections, ExportedVectorsImportBack) {
  test::TempDir dir;
  const std::string db = dir.file("c.db"), photos = lab_folder(dir);
  index(db, photos);
  EXPECT_EQ(export_vectors(db, "", dir.file("v.npy"), dir.file("paths.txt")), 4);
  const std::string npy = read_file(dir.file("v.npy"));
  EXPECT_NE(npy.find("'descr': '<f4'"), std::string::npos);
  EXPECT_NE(npy.find("'shape': (4, 16)"), std::string::npos);
  EXPECT_EQ(import_vectors(dir.file("back.db"), clip(), dir.file("v.npy"), dir.file("paths.txt")), 4);
  const auto a = Collection::open(db)->search({{QueryTerm::Kind::Text, "jellyfish", 1.f}}, {});
  const auto b = Collection::open(dir.file("back.db"))->search({{QueryTerm::Kind::Text, "jellyfish", 1.f}}, {});
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].path, b[i].path);
    EXPECT_FLOAT_EQ(a[i].score, b[i].score);
  }
  // The imported catalogue knows the model: indexing the folder with it embeds nothing.
  EXPECT_EQ(index(dir.file("back.db"), photos).unchanged, 4);
  EXPECT_THROW(import_vectors(dir.file("x.db"), clip(), dir.file("paths.txt"), dir.file("paths.txt")), Error);
}

// ---- HNSW

TEST(Collections, HnswRecallAgainstExactOnClusteredVectors) {
  // 5 000 unit vectors in 64 dimensions around 50 centres (photo embeddings cluster by subject).
  const int64_t n = 5000, dim = 64;
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  std::vector<float> centres(50 * dim), data(size_t(n * dim));
  for (auto& c : centres) c = normal(rng);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = int64_t(rng() % 50);
    double norm = 0;
    for (int64_t d = 0; d < dim; ++d) norm += double(data[i * dim + d] = centres[c * dim + d] + 0.7f * normal(rng)) * data[i * dim + d];
    for (int64_t d = 0; d < dim; ++d) data[i * dim + d] = float(data[i * dim + d] / std::sqrt(norm));
  }
  std::vector<int64_t> ids(n);
  std::iota(ids.begin(), ids.end(), 1);
  collections::VectorMatrix m;
  m.count = n;
  m.dim = dim;
  m.generation = 0;
  m.ids = ids.data();
  m.data = data.data();
  test::TempDir dir;
  const std::string db = dir.file("c.db");
  collections::Catalogue c(db, true, true);
  const auto model = c.add_model("synthetic", "1", dim, "none");
  collections::HnswGraph::update(c, model, m);
  const auto graph = collections::HnswGraph::load(c, model);
  ASSERT_TRUE(graph);
  EXPECT_EQ(graph->size(), n);
  int64_t found = 0, wanted = 0;
  for (int q = 0; q < 200; ++q) {
    const float* query = data.data() + size_t(rng() % n) * dim;
    const auto exact = collections::exact_top_k(m, query, 10, std::nullopt);
    const auto approx = graph->search(query, 10, 64, std::nullopt);
    for (const auto& [row, score] : exact) {
      ++wanted;
      for (const auto& [id, s] : approx) found += id == ids[size_t(row)];
    }
  }
  EXPECT_GE(double(found) / wanted, 0.99);
  // Incremental: half removed, the graph updated, none of them found again.
  m.count = n / 2;
  c.bump_generation();
  m.generation = c.generation();
  collections::HnswGraph::update(c, model, m);
  const auto half = collections::HnswGraph::load(c, model);
  ASSERT_TRUE(half);
  for (int q = 0; q < 50; ++q)
    for (const auto& [id, s] : half->search(data.data() + size_t(rng() % n) * dim, 10, 64, std::nullopt)) EXPECT_LE(id, n / 2);
}

TEST(Collections, HnswAndExactAgreeThroughTheCli) {
  test::TempDir dir;
  const std::string db = dir.file("c.db"), photos = dir.file("p");
  write_random_photos(photos, 40);
  auto r = test::run({"index", photos, "--model", clip(), "--db", db, "--hnsw", "on", "--json", "--quiet"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("\"hnsw\": true"), std::string::npos) << r.out;
  const auto exact = test::run({"search", "--db", db, "--text", "noise", "--method", "exact", "--paths", "--top-k", "5"});
  const auto graph = test::run({"search", "--db", db, "--text", "noise", "--method", "hnsw", "--paths", "--top-k", "5"});
  ASSERT_EQ(exact.code, 0) << exact.err;
  ASSERT_EQ(graph.code, 0) << graph.err;
  EXPECT_EQ(exact.out, graph.out);  // 40 vectors: the graph's search is exhaustive
}

// ---- The CLI: output forms and bad input

TEST(Collections, CliSearchFormsAndDuplicates) {
  test::TempDir dir;
  const std::string db = dir.file("c.db"), photos = lab_folder(dir);
  fs::copy_file(photos + "/chelsea.png", photos + "/chelsea_copy.png");
  ASSERT_EQ(test::run({"index", photos, "--model", clip(), "--db", db, "--quiet"}).code, 0);
  auto r = test::run({"search", "--db", db, "Cat with paint", "--json", "--top-k", "2"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j.size(), 2u);
  EXPECT_TRUE(j[0].contains("path") && j[0].contains("score") && j[0].contains("id"));
  r = test::run({"search", "--db", db, "--duplicates", "--threshold", "0.9999", "--paths"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, photos + "/chelsea.png\n" + photos + "/chelsea_copy.png\n");
  r = test::run({"search", "--db", db, "--image", photos + "/rocket.jpg", "--negative", "rock statue", "--paths", "--top-k", "1"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1);
}

TEST(Collections, BadInputGivesClearErrors) {
  test::TempDir dir;
  const std::string db = dir.file("c.db"), photos = lab_folder(dir);
  auto r = test::run({"index", dir.file("missing"), "--model", clip(), "--db", db});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find(dir.file("missing")), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(db));  // nothing created
  std::ofstream(dir.file("text.db")) << "just some text, not a database at all............................";
  r = test::run({"index", photos, "--model", clip(), "--db", dir.file("text.db")});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("not an mmx catalogue"), std::string::npos) << r.err;
  {  // another program's SQLite database
    sqlite3* h = nullptr;
    sqlite3_open(dir.file("other.db").c_str(), &h);
    sqlite3_exec(h, "CREATE TABLE songs(title TEXT)", nullptr, nullptr, nullptr);
    sqlite3_close(h);
  }
  r = test::run({"search", "--db", dir.file("other.db"), "cat"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("not an mmx catalogue"), std::string::npos) << r.err;
  r = test::run({"search", "--db", dir.file("none.db"), "cat"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("no such catalogue"), std::string::npos) << r.err;
  ASSERT_EQ(test::run({"index", photos, "--model", test::data("models/vit-tiny"), "--db", db, "--quiet"}).code, 0);
  r = test::run({"search", "--db", db, "cat"});  // ViT embeds no text
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("search it by image"), std::string::npos) << r.err;
  r = test::run({"search", "--db", db, "cat", "+"});
  EXPECT_EQ(r.code, 2);
  r = test::run({"index", photos, "--model", clip(), "--db", db, "--shard", "3/3"});
  EXPECT_EQ(r.code, 2);
  if (geteuid() != 0) {  // root writes through permissions
    fs::permissions(db, fs::perms::owner_read);
    r = test::run({"index", photos, "--model", clip(), "--db", db});
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("read-only"), std::string::npos) << r.err;
  }
}

// A full disk and a read-only catalogue, on a small tmpfs (skipped where this process cannot mount one,
// as an unprivileged user cannot).
TEST(Collections, FullDiskAndReadOnlyCatalogueAreErrorsThatKeepWhatWasCommitted) {
  test::TempDir dir;
  const std::string small = dir.file("small");
  fs::create_directories(small);
  if (std::system(("mount -t tmpfs -o size=300k tmpfs " + small + " 2>/dev/null").c_str()) != 0)
    GTEST_SKIP() << "cannot mount a tmpfs here";
  struct Unmount {
    std::string d;
    ~Unmount() { [[maybe_unused]] int rc = std::system(("umount " + d).c_str()); }
  } unmount{small};
  const std::string photos = dir.file("p"), db = small + "/c.db";
  write_random_photos(photos, 60);
  auto r = test::run({"index", photos, "--model", clip(), "--db", db, "--batch-size", "4"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find(db), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("disk is full"), std::string::npos) << r.err;
  const int64_t kept = Collection::open(db)->size();  // what was committed before is searchable
  EXPECT_GT(kept, 0);
  EXPECT_LT(kept, 60);
  ASSERT_EQ(std::system(("mount -o remount,ro " + small).c_str()), 0);
  r = test::run({"index", photos, "--model", clip(), "--db", db});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("read-only"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(db), std::string::npos) << r.err;
}

}  // namespace
}  // namespace mmx
