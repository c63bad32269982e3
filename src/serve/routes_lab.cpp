// The lab's operations over HTTP, with the CLI's numbers: POST /v1/similarity (rows × columns of texts
// and/or images, score dot | cosine | clip-logits, softmax none | dim0 | dim1: mmx similarity) and
// POST /v1/classify (a ViT classifier's head, or CLIP zero-shot over labels: mmx classify).
#include "mmx/classify.hpp"
#include "mmx/similarity.hpp"
#include "serve/service.hpp"

namespace mmx::serve {
namespace {

using nlohmann::json;

std::vector<Input> items(const json& body, const char* key) {
  if (!body.contains(key) || !body[key].is_array())
    throw HttpError(400, "Validation", str("'", key, "' must be a list of texts or image objects"));
  std::vector<Input> inputs;
  for (size_t i = 0; i < body[key].size(); ++i) inputs.push_back(input_item(body[key][i], i, false));
  return inputs;
}

std::optional<Pooling> pooling_field(const json& body, const char* key) {
  const std::string name = string_field(body, key, Dialect::OpenAI);
  if (name.empty()) return std::nullopt;
  try {
    return pooling_from_name(name);
  } catch (const Error& e) {
    throw HttpError(400, "Validation", str("'", key, "': ", e.what()));
  }
}

Tensor rows_tensor(const std::vector<std::vector<float>>& vectors, size_t from, size_t count) {
  const int64_t d = int64_t(vectors[from].size());
  Tensor t = Tensor::empty({int64_t(count), d});
  for (size_t r = 0; r < count; ++r) std::copy(vectors[from + r].begin(), vectors[from + r].end(), t.data<float>() + r * d);
  return t;
}

void similarity(Service& service, const httplib::Request& req, httplib::Response& res) {
  const json body = parse_body(req);
  ServedModel& model = service.model(string_field(body, "model", Dialect::OpenAI));
  std::vector<Input> rows = items(body, "rows");
  const std::vector<Input> cols = body.contains("columns") ? items(body, "columns") : rows;
  Score score;
  SoftmaxDim softmax;
  try {
    score = score_from_name(string_field(body, "score", Dialect::OpenAI, "cosine"));
    softmax = softmax_dim_from_name(string_field(body, "softmax", Dialect::OpenAI, "none"));
  } catch (const Error& e) {
    throw HttpError(400, "Validation", e.what());
  }
  if (rows.empty() || cols.empty()) throw HttpError(400, "Validation", "'rows' and 'columns' need at least one input each");
  const size_t n_rows = rows.size();
  rows.insert(rows.end(), cols.begin(), cols.end());  // texts of both sides in one batch, as the CLI embeds them
  Truncation truncation;
  const Embedded e = service.embed(model, rows, truncation, req, pooling_field(body, "text_pooling"),
                                   pooling_field(body, "image_pooling"));
  if (e.vectors.front().size() != e.vectors.back().size())
    throw HttpError(400, "Validation", str("rows have ", e.vectors.front().size(), " features and columns ",
                                           e.vectors.back().size(), ": choose poolings of one space (CLIP: projection)"));
  Tensor matrix = similarity_matrix(rows_tensor(e.vectors, 0, n_rows), rows_tensor(e.vectors, n_rows, cols.size()), score,
                                    model.model->logit_scale());
  softmax_(matrix, softmax);
  json out = json::array();
  for (int64_t r = 0; r < matrix.dim(0); ++r)
    out.push_back(std::vector<float>(matrix.data<float>() + r * matrix.dim(1), matrix.data<float>() + (r + 1) * matrix.dim(1)));
  send_json(res, {{"object", "similarity"},
                  {"model", model.name},
                  {"score", score_name(score)},
                  {"softmax", softmax_dim_name(softmax)},
                  {"matrix", std::move(out)}});
}

void classify(Service& service, const httplib::Request& req, httplib::Response& res) {
  const json body = parse_body(req);
  ServedModel& model = service.model(string_field(body, "model", Dialect::OpenAI));
  const std::vector<Input> inputs = items(body, "images");
  service.check_count(inputs.size());
  std::vector<Image> images;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i].kind != Input::Kind::Image && inputs[i].kind != Input::Kind::Text)
      throw HttpError(400, "Validation", str("image ", i, " must be an image object or a data: URL"));
    images.push_back(service.decode_image(inputs[i].kind == Input::Kind::Image ? inputs[i].image : inputs[i].text, i));
  }
  int64_t top_k = 5;
  if (body.contains("top_k")) {
    if (!body["top_k"].is_number_integer() || body["top_k"].get<int64_t>() < 1)
      throw HttpError(400, "Validation", "'top_k' must be a positive integer");
    top_k = body["top_k"].get<int64_t>();
  }
  std::vector<std::string> labels;
  if (body.contains("labels")) {
    if (!body["labels"].is_array()) throw HttpError(400, "Validation", "'labels' must be a list of strings");
    for (const json& l : body["labels"]) {
      if (!l.is_string() || l.get<std::string>().empty()) throw HttpError(400, "Validation", "'labels' must be non-empty strings");
      labels.push_back(l.get<std::string>());
    }
  }
  const std::string prompt = string_field(body, "template", Dialect::OpenAI, "a photo of a {}.");
  // On the model's worker, so classification and embedding batches of one model never run at once. The
  // task owns what it reads: a request that times out leaves while the worker may still run it.
  struct Work {
    std::shared_ptr<const Model> model;
    std::vector<Image> images;
    std::vector<std::string> labels;
    std::string prompt;
    int64_t top_k;
    std::vector<std::vector<Prediction>> results;
  };
  auto work = std::make_shared<Work>(Work{model.model, std::move(images), std::move(labels), prompt, top_k, {}});
  service.run_on_worker(model, [work] {
    if (!work->labels.empty() || (!work->model->has_classifier() && work->model->logit_scale()))
      work->results = zero_shot_classify(work->model, work->images, work->labels, work->prompt, work->top_k);
    else
      work->results = ImageClassifier(work->model).classify(work->images, work->top_k);
  }, req);
  const auto& results = work->results;
  json data = json::array();
  for (size_t i = 0; i < results.size(); ++i) {
    json predictions = json::array();
    for (const Prediction& p : results[i])
      predictions.push_back({{"label", p.label}, {"id", p.id}, {"probability", p.probability}});
    data.push_back({{"index", i}, {"predictions", std::move(predictions)}});
  }
  send_json(res, {{"object", "list"}, {"model", model.name}, {"data", std::move(data)}});
}

}  // namespace

void add_lab_routes(httplib::Server& http, const Guard& guard) {
  http.Post("/v1/similarity", guard(Dialect::OpenAI, similarity));
  http.Post("/v1/classify", guard(Dialect::OpenAI, classify));
}

}  // namespace mmx::serve
