// A photo collection over HTTP (mmx serve --index DB): POST /v1/search (the CLI's query forms, images as
// data: URLs, catalogued files by id), thumbnails generated once and cached beside the catalogue, the
// lab's annotated heatmap for picked images and typed captions, and the web page at / (web_page.cpp).
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>

#include "mmx/collection.hpp"
#include "mmx/embed.hpp"
#include "mmx/files.hpp"
#include "mmx/pil_resize.hpp"
#include "mmx/plot/render.hpp"
#include "mmx/similarity.hpp"
#include "serve/service.hpp"

namespace mmx::serve {

std::string_view web_page_html();  // web_page.cpp

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

Collection& collection_of(Service& service) {
  if (!service.collection()) throw HttpError(404, "NotFound", "this server has no collection (start it with --index DB)");
  return *service.collection();
}

float number_field(const json& body, const char* key, float fallback) {
  if (!body.contains(key) || body[key].is_null()) return fallback;
  if (!body[key].is_number()) throw HttpError(400, "Validation", str("'", key, "' must be a number"));
  return body[key].get<float>();
}

// One query term of a request: a string (text), {"text", "weight"}, {"image": data URL, "weight"},
// {"file_id": N, "weight"} (a catalogued image: its stored vector).
QueryTerm term_of(Service& service, const json& item, const std::string& where, float sign) {
  QueryTerm t;
  t.weight = sign;
  if (item.is_string()) {
    t.value = item.get<std::string>();
    return t;
  }
  if (!item.is_object()) throw HttpError(400, "Validation", where + ": a text, or an object with text, image or file_id");
  t.weight = sign * number_field(item, "weight", 1.f);
  if (item.contains("text") && item["text"].is_string()) {
    t.value = item["text"].get<std::string>();
  } else if (item.contains("image") && item["image"].is_string()) {
    t.kind = QueryTerm::Kind::ImageBytes;
    t.value = encode_png(service.decode_image(item["image"].get<std::string>(), 0));
  } else if (item.contains("file_id") && item["file_id"].is_number_integer()) {
    t.kind = QueryTerm::Kind::StoredFile;
    t.value = std::to_string(item["file_id"].get<int64_t>());
  } else {
    throw HttpError(400, "Validation", where + ": needs \"text\", \"image\" (a data: URL) or \"file_id\"");
  }
  if (t.kind == QueryTerm::Kind::Text && t.value.empty()) throw HttpError(400, "Validation", where + ": an empty text");
  return t;
}

std::vector<QueryTerm> terms_of(Service& service, const json& body) {
  std::vector<QueryTerm> terms;
  if (body.contains("query")) {
    if (!body["query"].is_string()) throw HttpError(400, "Validation", "'query' must be a string (rclip's language)");
    try {
      terms = parse_query({body["query"].get<std::string>()}, false);
    } catch (const Error& e) {
      throw HttpError(400, "Validation", e.what());
    }
  }
  if (body.contains("text")) terms.push_back(term_of(service, body["text"], "'text'", 1.f));
  if (body.contains("image")) terms.push_back(term_of(service, json{{"image", body["image"]}}, "'image'", 1.f));
  if (body.contains("file_id")) terms.push_back(term_of(service, json{{"file_id", body["file_id"]}}, "'file_id'", 1.f));
  for (const char* key : {"queries", "negative"}) {
    if (!body.contains(key)) continue;
    if (!body[key].is_array()) throw HttpError(400, "Validation", str("'", key, "' must be a list"));
    for (size_t i = 0; i < body[key].size(); ++i)
      terms.push_back(term_of(service, body[key][i], str("'", key, "'[", i, "]"), std::string(key) == "negative" ? -1.f : 1.f));
  }
  return terms;
}

json hits_json(const std::vector<SearchHit>& hits) {
  json out = json::array();
  for (const auto& h : hits)
    out.push_back({{"id", h.file_id}, {"path", h.path}, {"score", h.score}, {"thumbnail", str("/v1/thumbnails/", h.file_id)}});
  return out;
}

void search(Service& service, const httplib::Request& req, httplib::Response& res) {
  const auto start = Clock::now();
  const json body = parse_body(req);
  Collection& c = collection_of(service);
  c.refresh();  // a finished `mmx index` is seen by the next request
  SearchOptions o;
  o.top_k = int64_t(number_field(body, "top_k", 10));
  if (o.top_k < 1 || o.top_k > 10000) throw HttpError(400, "Validation", "'top_k' must be within 1..10000");
  if (body.contains("threshold") && !body["threshold"].is_null()) o.threshold = number_field(body, "threshold", 0);
  const std::string method = string_field(body, "method", Dialect::OpenAI, "auto");
  if (method != "auto" && method != "exact" && method != "hnsw")
    throw HttpError(400, "Validation", "'method' is auto, exact or hnsw");
  o.method = method == "exact" ? SearchMethod::Exact : method == "hnsw" ? SearchMethod::Hnsw : SearchMethod::Auto;
  json out = {{"object", "search"}, {"model", c.model_name()}, {"vectors", c.size()}};
  if (bool_field(body, "duplicates", Dialect::OpenAI, false)) {
    json groups = json::array();
    for (const auto& g : c.duplicates(o.threshold.value_or(0.95f))) groups.push_back(hits_json(g));
    out["groups"] = std::move(groups);
  } else {
    const std::vector<QueryTerm> terms = terms_of(service, body);
    if (terms.empty()) throw HttpError(400, "Validation", "a search needs \"query\", \"text\", \"image\", \"file_id\" or \"queries\"");
    out["results"] = hits_json(c.search(terms, o));
  }
  out["method"] = c.uses_hnsw(o.method) ? "hnsw" : "exact";
  out["took_ms"] = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  send_json(res, out);
}

void collection_info(Service& service, const httplib::Request&, httplib::Response& res) {
  Collection& c = collection_of(service);
  c.refresh();
  send_json(res, {{"object", "collection"}, {"model", c.model_name()}, {"vectors", c.size()}, {"dimension", c.dimension()},
                  {"hnsw", c.has_hnsw()}});
}

// The lab's view: picked images (columns) × typed captions (rows), CLIP's unnormalised
// get_text_features · get_image_features, softmax over dim 0, drawn as the lab's annotated heatmap.
void heatmap(Service& service, const httplib::Request& req, httplib::Response& res) {
  const json body = parse_body(req);
  Collection& c = collection_of(service);
  if (!body.contains("file_ids") || !body["file_ids"].is_array() || body["file_ids"].empty() || body["file_ids"].size() > 16)
    throw HttpError(400, "Validation", "'file_ids' must list 1 to 16 catalogued images");
  if (!body.contains("captions") || !body["captions"].is_array() || body["captions"].empty() || body["captions"].size() > 16)
    throw HttpError(400, "Validation", "'captions' must list 1 to 16 texts");
  std::vector<std::string> captions, names;
  for (const auto& t : body["captions"]) {
    if (!t.is_string() || t.get<std::string>().empty()) throw HttpError(400, "Validation", "'captions' holds non-empty texts");
    captions.push_back(t.get<std::string>());
  }
  std::vector<Image> images;
  for (const auto& id : body["file_ids"]) {
    if (!id.is_number_integer()) throw HttpError(400, "Validation", "'file_ids' holds integers");
    const auto f = c.file(id.get<int64_t>());
    if (!f) throw HttpError(404, "NotFound", str("no catalogued image ", id.get<int64_t>()));
    images.push_back(decode_image_upright(read_file(f->path), f->path));
    names.push_back(std::filesystem::path(f->path).filename().string());
  }
  const auto model = Model::load(c.model_name(), {});
  if (!model->has_text() || !model->logit_scale())
    throw HttpError(400, "Validation", "the collection's model embeds no text in the images' space");
  const EmbedResult t = TextEmbedder(model).embed(captions, {});
  const EmbedResult i = ImageEmbedder(model).embed(images, {});
  Tensor m = similarity_matrix(t.embeddings, i.embeddings, Score::Dot, model->logit_scale());
  softmax_(m, SoftmaxDim::Dim0);
  plot::Figure figure;
  plot::Heatmap h;
  h.rows = int(captions.size());
  h.cols = int(images.size());
  h.values.assign(m.data<float>(), m.data<float>() + m.numel());
  h.row_labels = captions;
  h.col_labels = names;
  h.title = "Cross-modal similarity (softmax over captions)";
  figure.panels.push_back(h);
  std::tie(figure.width_in, figure.height_in) = plot::default_panel_size(h.rows, h.cols);
  char dir_template[] = "/tmp/mmx-heatmap-XXXXXX";
  const char* dir = mkdtemp(dir_template);
  if (!dir) throw HttpError(500, "Backend", "cannot create a temporary folder for the heatmap");
  const std::string svg_path = std::string(dir) + "/heatmap.svg";
  std::string svg;
  try {
    plot::save_figure(figure, svg_path);
    svg = read_file(svg_path);
  } catch (...) {
    std::filesystem::remove_all(dir);
    throw;
  }
  std::filesystem::remove_all(dir);
  json matrix = json::array();
  for (int64_t r = 0; r < m.dim(0); ++r)
    matrix.push_back(std::vector<float>(m.data<float>() + r * m.dim(1), m.data<float>() + (r + 1) * m.dim(1)));
  send_json(res, {{"object", "heatmap"}, {"rows", captions}, {"columns", names}, {"matrix", matrix}, {"svg", svg}});
}

// Thumbnails: the upright image fitted in 256 × 256 (PIL's bicubic), JPEG; kept in "<db>.thumbnails/"
// named by content hash (a renamed file keeps its thumbnail) when that folder can be written.
void thumbnail(Service& service, const httplib::Request& req, httplib::Response& res) {
  Collection& c = collection_of(service);
  int64_t id = 0;
  try {
    id = std::stoll(req.matches[1].str());
  } catch (const std::exception&) {
    throw HttpError(400, "Validation", "a thumbnail id is an integer");
  }
  const auto f = c.file(id);
  if (!f) throw HttpError(404, "NotFound", str("no catalogued image ", id));
  const std::string cache_dir = c.db() + ".thumbnails", cached = cache_dir + "/" + f->content_hash + ".jpg";
  std::string jpeg;
  if (file_exists(cached)) {
    jpeg = read_file(cached);
  } else {
    const Image image = decode_image_upright(read_file(f->path), f->path);
    constexpr int64_t kSide = 256;
    const double scale = std::min(1.0, double(kSide) / double(std::max(image.width, image.height)));
    const int64_t w = std::max<int64_t>(1, int64_t(image.width * scale + 0.5)), h = std::max<int64_t>(1, int64_t(image.height * scale + 0.5));
    jpeg = encode_jpeg(scale < 1 ? resize(image, w, h, Resample::Bicubic) : image, 82);
    std::error_code ec;
    std::filesystem::create_directories(cache_dir, ec);
    if (!ec) {
      try {
        write_file_atomically(cached, jpeg);
      } catch (const Error&) {  // a read-only place: served from memory only
      }
    }
  }
  res.set_header("Cache-Control", "max-age=86400");
  res.set_content(jpeg, "image/jpeg");
}

void page(Service& service, const httplib::Request&, httplib::Response& res) {
  if (service.generators().empty()) collection_of(service);  // a page needs a collection or an image model
  const std::string_view html = web_page_html();
  res.set_content(std::string(html), "text/html; charset=utf-8");
}

}  // namespace

void add_search_routes(httplib::Server& http, const Guard& guard) {
  http.Post("/v1/search", guard(Dialect::OpenAI, search));
  http.Get("/v1/collection", guard(Dialect::OpenAI, collection_info));
  http.Post("/v1/search/heatmap", guard(Dialect::OpenAI, heatmap));
  http.Get(R"(/v1/thumbnails/(\d+))", guard(Dialect::OpenAI, thumbnail));
  http.Get("/", guard(Dialect::OpenAI, page));
}

}  // namespace mmx::serve
