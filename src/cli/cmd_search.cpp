// mmx search: a catalogue searched by text, by image, by weighted mixes of both; near-duplicate groups.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "mmx/collection.hpp"
#include "mmx/error.hpp"
#include "mmx/files.hpp"

namespace mmx::cli {

const Command kSearchCommand{
    "search",
    "mmx search [QUERY...] [--db PATH] [--text T]... [--image F]... [--negative T|F]... [--weight W]...\n"
    "           [--top-k K] [--threshold S] [--json | --paths]\n"
    "       mmx search --duplicates [--threshold S] [--db PATH]",
    "Search an indexed photo collection by text or image (and sums and differences of both).",
    {
        {"db", "PATH", "the catalogue `mmx index` wrote (default: .mmx-catalogue.db here)"},
        text_option("text", "T", "a text query (CLIP catalogues)", true),
        {"image", "F", "an image query: photos like it", true},
        text_option("negative", "T|F", "subtracted from the query: a text, or an image file", true),
        {"weight", "W", "weights of the --text then --image queries, in order (default 1 each)", true},
        {"top-k", "K", "results (default 10)"},
        {"threshold", "S", "only results scoring at least S (cosine similarity, -1..1)"},
        {"duplicates", "", "groups of near-duplicate images instead (default --threshold 0.95)"},
        {"model", "MODEL", "which model's vectors, when the catalogue holds several"},
        {"method", "M", "exact (one GEMM over all vectors), hnsw (the graph), auto (hnsw when built)", false,
         {"auto", "exact", "hnsw"}},
        {"ef", "N", "HNSW search breadth (default max(8·K, 128); with a text term max(32·K, 512)): higher finds more of the exact top-k"},
        {"json", "", "print [{\"path\", \"score\", \"id\"}, ...] (duplicates: a list of such groups)"},
        {"paths", "", "print only the paths, best first (for xargs, feh, ...)"},
    },
    R"(QUERY is rclip's language: terms joined by + and -, each optionally weighted "W:term"; a term that
names an existing image file is an image, any other a text:
  mmx search "2:golden retriever" + pool.jpg - fruit
Each term is embedded (texts by the text tower alone: an image encoder is not loaded for a text query),
L2-normalised, weighted, summed; the sum is normalised and compared with every catalogued image by cosine
similarity (exactly, or through the HNSW graph `mmx index --hnsw on` built).

examples:
  mmx index tests/data/images --model tests/data/models/clip-tiny --db photos.db --quiet
  mmx search --db photos.db "a tabby cat" --top-k 5
  mmx search --db photos.db "2:a tabby cat" + tests/data/images/coffee.png - "a rocket"
  mmx search --db photos.db --image tests/data/images/chelsea.png --negative "people" --paths
  mmx search --db photos.db --duplicates --threshold 0.99 --json
)",
    true,
};

namespace {

nlohmann::ordered_json hits_json(const std::vector<SearchHit>& hits) {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const auto& h : hits) out.push_back({{"path", h.path}, {"score", h.score}, {"id", h.file_id}});
  return out;
}

}  // namespace

int run_search(const Args& args) {
  const std::string db = args.get("db").value_or(".mmx-catalogue.db");
  if (args.has("json") && args.has("paths")) usage_error("--json and --paths exclude each other");
  SearchOptions options;
  options.top_k = args.get_int("top-k", 1).value_or(10);
  if (const auto t = args.get_double("threshold", -1.0)) {
    if (*t > 1.0) usage_error("--threshold ", *t, " is above 1 (scores are cosine similarities)");
    options.threshold = static_cast<float>(*t);
  }
  const std::string method = args.get("method").value_or("auto");
  options.method = method == "exact" ? SearchMethod::Exact : method == "hnsw" ? SearchMethod::Hnsw : SearchMethod::Auto;
  options.ef = args.get_int("ef", 1).value_or(0);

  // The query, checked before the catalogue or a model is opened.
  std::vector<QueryTerm> terms;
  if (!args.positionals().empty()) terms = parse_query(args.positionals());
  const auto texts = args.all("text"), images = args.all("image"), weights = args.all("weight");
  if (weights.size() > texts.size() + images.size())
    usage_error(weights.size(), " --weight values for ", texts.size() + images.size(), " --text/--image queries");
  size_t w = 0;
  auto next_weight = [&]() -> float {
    if (w >= weights.size()) return 1.f;
    char* end = nullptr;
    const double v = std::strtod(weights[w].c_str(), &end);
    if (end == weights[w].c_str() || *end) usage_error("--weight expects a number, got '", weights[w], "'");
    ++w;
    return static_cast<float>(v);
  };
  for (const auto& t : texts) terms.push_back({QueryTerm::Kind::Text, t, next_weight()});
  for (const auto& f : images) {
    if (!file_exists(f)) usage_error("--image ", f, ": no such file");
    terms.push_back({QueryTerm::Kind::Image, f, next_weight()});
  }
  for (const auto& n : args.all("negative")) {
    const bool image = has_image_extension(n) && file_exists(n);
    terms.push_back({image ? QueryTerm::Kind::Image : QueryTerm::Kind::Text, n, -1.f});
  }
  const bool duplicates = args.has("duplicates");
  if (duplicates && !terms.empty()) usage_error("--duplicates takes no query");
  if (!duplicates && terms.empty()) usage_error("give a query: QUERY, --text T or --image F (see mmx search --help)");

  const auto collection = Collection::open(db, args.get("model").value_or(""), placement_of(args));
  if (duplicates) {
    const auto groups = collection->duplicates(options.threshold.value_or(0.95f));
    if (args.has("json")) {
      nlohmann::ordered_json out = nlohmann::ordered_json::array();
      for (const auto& g : groups) out.push_back(hits_json(g));
      std::puts(json_text(out, 2).c_str());
      return 0;
    }
    for (size_t i = 0; i < groups.size(); ++i) {
      if (i) std::puts("");
      for (const auto& h : groups[i])
        if (args.has("paths")) std::puts(h.path.c_str());
        else std::printf("%8.4f  %s\n", h.score, h.path.c_str());
    }
    if (chatty()) std::fprintf(stderr, "%zu groups of near-duplicates (threshold %.3f)\n", groups.size(), options.threshold.value_or(0.95f));
    return 0;
  }
  const auto hits = collection->search(terms, options);
  if (args.has("json")) {
    std::puts(json_text(hits_json(hits), 2).c_str());
  } else {
    for (const auto& h : hits)
      if (args.has("paths")) std::puts(h.path.c_str());
      else std::printf("%8.4f  %s\n", h.score, h.path.c_str());
  }
  return 0;
}

}  // namespace mmx::cli
