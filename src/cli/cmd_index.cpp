// mmx index: photo folders into a catalogue of image embeddings, incrementally; shards merged; vectors
// exported to and imported from .npy.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/progress.hpp"
#include "mmx/collection.hpp"
#include "mmx/error.hpp"
#include "mmx/files.hpp"

namespace mmx::cli {

const Command kIndexCommand{
    "index",
    "mmx index DIR... --model MODEL [--db PATH] [--hidden] [--shard I/N] [--hnsw auto|on|off]\n"
    "       mmx index --merge SHARD.db... --db PATH\n"
    "       mmx index --export VECTORS.npy --paths PATHS.txt --db PATH [--model MODEL]\n"
    "       mmx index --import VECTORS.npy --paths PATHS.txt --model MODEL --db PATH",
    "Index photo folders into a catalogue (SQLite) of image embeddings, to search by text or image.",
    {
        {"model", "MODEL", "the image encoder: a CLIP folder or Hub id (text and image search), or ViT (image only)"},
        {"db", "PATH", "the catalogue (default: .mmx-catalogue.db inside the only DIR)"},
        {"hidden", "", "also index files and folders whose names start with '.'"},
        {"batch-size", "N", "images per forward pass and per transaction (default 32): what an interruption loses"},
        {"shard", "I/N", "index only shard I (0-based) of N, by a hash of each file's path under DIR: N machines, N catalogues"},
        {"merge", "", "combine the catalogues given as arguments (same model) into --db"},
        {"hnsw", "WHEN", "build/update an HNSW graph: auto (from 250000 vectors), on, off (default auto)", false, {"auto", "on", "off"}},
        {"export", "FILE.npy", "write the model's normalised vectors as float32 [N, D], one row per file"},
        {"import", "FILE.npy", "read vectors back (with --paths and --model)"},
        {"paths", "FILE", "with --export / --import: the files' paths, one per line, in the rows' order"},
        {"progress", "", "a progress line also when stderr is not a terminal"},
        {"json", "", "print the summary as JSON"},
    },
    R"(Every image file under each DIR (PNG, JPEG, WebP, GIF, TIFF, BMP; recursive; symbolic links followed,
each folder once) is decoded, turned upright by its EXIF orientation (as a photo viewer shows it; the
Hugging Face processors do not turn images, so `mmx embed` does not), embedded with the model's image
features (CLIP: get_image_features), L2-normalised and stored with its path, size, mtime and a content
hash (SHA-256 of the size, first MiB and last KiB).

Running it again is incremental: unchanged files (same path, size, mtime) are not read; changed files are
embedded again; renamed, moved or copied files are recognised by their hash and not decoded; files gone
from disk are removed. Another model adds its own vectors to the same catalogue. Each batch is one
transaction (SQLite in WAL mode): an interruption (Ctrl-C, kill -9) loses at most the batch in flight, and
a second `mmx index` on the same catalogue is refused while one runs. Unreadable images are reported once,
skipped and counted; they are retried when they change.

With a real CLIP: mmx index ~/Pictures --model openai/clip-vit-base-patch32 (the catalogue then is
~/Pictures/.mmx-catalogue.db, which mmx search finds by --db).

examples:
  mmx index tests/data/images --model tests/data/models/clip-tiny --db photos.db
  mmx index tests/data/images --model tests/data/models/clip-tiny --db part0.db --shard 0/2
  mmx index tests/data/images --model tests/data/models/clip-tiny --db part1.db --shard 1/2
  mmx index --merge part0.db part1.db --db all.db
  mmx index --export vectors.npy --paths paths.txt --db all.db
)",
    true,
};

namespace {

std::pair<int, int> parse_shard(const std::string& text) {
  const size_t slash = text.find('/');
  try {
    if (slash != std::string::npos) {
      size_t used = 0;
      const int i = std::stoi(text.substr(0, slash), &used);
      if (used == slash) {
        const std::string rest = text.substr(slash + 1);
        const int n = std::stoi(rest, &used);
        if (used == rest.size() && n >= 1 && i >= 0 && i < n) return {i, n};
      }
    }
  } catch (const std::exception&) {
  }
  usage_error("--shard expects I/N with 0 <= I < N (e.g. 0/4), got '", text, "'");
}

}  // namespace

int run_index(const Args& args) {
  const std::vector<std::string>& dirs = args.positionals();
  const auto db_arg = args.get("db");
  if (args.has("export") || args.has("import")) {
    if (!db_arg) usage_error("--export and --import need --db PATH");
    const auto paths = args.get("paths");
    if (!paths) usage_error("--export and --import need --paths FILE (the files' paths, one per line)");
    if (args.has("export")) {
      check_output_path(*args.get("export"));
      check_output_path(*paths);
      const int64_t rows = export_vectors(*db_arg, args.get("model").value_or(""), *args.get("export"), *paths);
      if (chatty()) std::fprintf(stderr, "wrote %lld vectors to %s and their paths to %s\n", (long long)rows, args.get("export")->c_str(), paths->c_str());
    } else {
      const int64_t rows = import_vectors(*db_arg, args.get("model").value_or(""), *args.get("import"), *paths);
      if (chatty()) std::fprintf(stderr, "imported %lld vectors into %s\n", (long long)rows, db_arg->c_str());
    }
    return 0;
  }
  if (args.has("merge")) {
    if (!db_arg) usage_error("--merge needs --db PATH, the catalogue to merge into");
    const int64_t files = merge_catalogues(*db_arg, dirs);
    if (chatty()) std::fprintf(stderr, "merged %lld files from %zu catalogues into %s\n", (long long)files, dirs.size(), db_arg->c_str());
    return 0;
  }
  if (dirs.empty()) usage_error("name at least one folder to index (mmx index DIR --model MODEL)");
  const auto model = args.get("model");
  if (!model) usage_error("--model MODEL is required (a CLIP folder or Hub id, e.g. openai/clip-vit-base-patch32)");
  if (!db_arg && dirs.size() > 1) usage_error("several folders: name the catalogue with --db PATH");
  const std::string db = db_arg ? *db_arg : join_path(dirs.front(), ".mmx-catalogue.db");
  for (const auto& d : dirs)
    if (!dir_exists(d)) fail(d, ": no such folder");
  IndexOptions options;
  options.include_hidden = args.has("hidden");
  options.batch_size = args.get_int("batch-size", 1).value_or(32);
  if (const auto shard = args.get("shard")) std::tie(options.shard_index, options.shard_count) = parse_shard(*shard);
  const std::string hnsw = args.get("hnsw").value_or("auto");
  if (hnsw == "on") options.hnsw_min_vectors = 0;
  else if (hnsw == "off") options.hnsw_min_vectors = -1;
  else if (hnsw != "auto") usage_error("--hnsw takes auto, on or off, got '", hnsw, "'");
  std::unique_ptr<ProgressLine> progress;
  options.progress = [&](int64_t done, int64_t total) {
    if (!progress) progress = std::make_unique<ProgressLine>("embedding images", total, args.has("progress"));
    progress->update(done);
    if (done == total) progress->finish();
  };
  options.on_bad_file = [](const std::string& path, const std::string& error) {
    (void)path;
    if (chatty()) std::fprintf(stderr, "skipped: %s\n", error.c_str());
  };
  const IndexSummary s = index_folders(db, dirs, *model, placement_of(args), options);
  progress.reset();
  if (args.has("json")) {
    nlohmann::ordered_json out = {{"db", db},           {"files", s.files},       {"unchanged", s.unchanged},
                                  {"embedded", s.embedded}, {"reused", s.reused}, {"removed", s.removed},
                                  {"failed", s.failed}, {"vectors", s.vectors},   {"hnsw", s.hnsw},
                                  {"seconds", s.seconds}};
    std::puts(json_text(out, 2).c_str());
  }
  if (chatty())
    std::fprintf(stderr,
                 "%s: %lld files: %lld embedded, %lld unchanged, %lld renamed/copied (not decoded), %lld removed, %lld "
                 "unreadable; %lld vectors%s; %.1f s (%.1f embedded/s)\n",
                 db.c_str(), (long long)s.files, (long long)s.embedded, (long long)s.unchanged, (long long)s.reused,
                 (long long)s.removed, (long long)s.failed, (long long)s.vectors, s.hnsw ? ", HNSW graph updated" : "",
                 s.seconds, s.seconds > 0 ? s.embedded / s.seconds : 0.0);
  return 0;
}

}  // namespace mmx::cli
