// Hugging Face text-embeddings-inference's routes with its request and response shapes and its error
// statuses (413 batch or payload too large, 422 validation, 424 model failure, 429 overloaded): POST /embed,
// /similarity, /tokenize and GET /info. They use the request's "model" when given (an mmx extension: TEI
// serves one model), else the first --model.
#include <cmath>

#include "pipelines/pooling.hpp"
#include "serve/service.hpp"

namespace mmx::serve {
namespace {

using nlohmann::json;

std::vector<Input> tei_inputs(const json& body) {
  if (!body.contains("inputs")) throw HttpError(422, "Validation", "'inputs' is required");
  const json& in = body["inputs"];
  std::vector<Input> inputs;
  auto one = [&](const json& item, size_t index) {
    Input x;
    if (item.is_string()) {
      x.text = item.get<std::string>();
    } else if (item.is_array()) {
      x.kind = Input::Kind::Ids;
      for (const json& v : item) {
        if (!v.is_number_integer()) throw HttpError(422, "Validation", str("input ", index, ": token ids must be integers"));
        x.ids.push_back(v.get<int64_t>());
      }
    } else {
      throw HttpError(422, "Validation", str("input ", index, " must be a string or a list of token ids"));
    }
    inputs.push_back(std::move(x));
  };
  if (in.is_string()) one(in, 0);
  else if (in.is_array() && !in.empty() && in.front().is_number()) one(in, 0);
  else if (in.is_array()) for (size_t i = 0; i < in.size(); ++i) one(in[i], i);
  else throw HttpError(422, "Validation", "'inputs' must be a string or a list of strings");
  return inputs;
}

// The request's "model" (an mmx extension: TEI serves one model), else the first --model.
ServedModel& model_of(Service& service, const json& body) {
  return service.model(string_field(body, "model", Dialect::Tei));
}

Truncation tei_truncation(const json& body) {
  Truncation t;
  t.truncate = bool_field(body, "truncate", Dialect::Tei, false);
  t.too_long_status = 413;
  if (body.contains("truncation_direction") && !body["truncation_direction"].is_null()) {
    const json& d = body["truncation_direction"];
    if (!d.is_string() || (d != "Right" && d != "Left" && d != "right" && d != "left"))
      throw HttpError(422, "Validation", "'truncation_direction' must be \"Right\" or \"Left\"");
    t.left = d == "Left" || d == "left";
  }
  return t;
}

void embed(Service& service, const httplib::Request& req, httplib::Response& res) {
  const json body = parse_body(req);
  ServedModel& model = model_of(service, body);
  const bool normalize = bool_field(body, "normalize", Dialect::Tei, true);
  // TEI's prompt_name: one of a sentence-transformers folder's prompts (unset: its default_prompt_name).
  std::optional<std::string> prompt_name;
  if (body.contains("prompt_name") && !body["prompt_name"].is_null()) prompt_name = string_field(body, "prompt_name", Dialect::Tei);
  Embedded e = service.embed(model, tei_inputs(body), tei_truncation(body), req, std::nullopt, std::nullopt, prompt_name);
  if (normalize)
    for (auto& v : e.vectors) detail::l2_normalize(v.data(), int64_t(v.size()));
  send_json(res, e.vectors);
}

// Cosine similarity of a source sentence to each of the others, as TEI's /similarity (sentence-transformers'
// pipeline): embeddings of all of them in one batch.
void similarity(Service& service, const httplib::Request& req, httplib::Response& res) {
  const json body = parse_body(req);
  ServedModel& model = model_of(service, body);
  if (!body.contains("inputs") || !body["inputs"].is_object() || !body["inputs"].contains("source_sentence") ||
      !body["inputs"]["source_sentence"].is_string() || !body["inputs"].contains("sentences") ||
      !body["inputs"]["sentences"].is_array())
    throw HttpError(422, "Validation", "'inputs' must be {\"source_sentence\": string, \"sentences\": [string, ...]}");
  std::vector<Input> inputs(1);
  inputs[0].text = body["inputs"]["source_sentence"].get<std::string>();
  for (const json& s : body["inputs"]["sentences"]) {
    if (!s.is_string()) throw HttpError(422, "Validation", "'sentences' must be strings");
    Input x;
    x.text = s.get<std::string>();
    inputs.push_back(std::move(x));
  }
  if (inputs.size() < 2) throw HttpError(422, "Empty", "'sentences' is empty");
  Embedded e = service.embed(model, inputs, tei_truncation(body), req);
  for (auto& v : e.vectors) detail::l2_normalize(v.data(), int64_t(v.size()));
  std::vector<float> scores;
  for (size_t i = 1; i < e.vectors.size(); ++i) {
    double dot = 0;
    for (size_t k = 0; k < e.vectors[0].size(); ++k) dot += double(e.vectors[0][k]) * e.vectors[i][k];
    scores.push_back(float(dot));
  }
  send_json(res, scores);
}

// Tokens as TEI lists them: id, text, special. Offsets (start, stop) are null: mmx's tokenizers do not
// track character offsets.
void tokenize(Service& service, const httplib::Request& req, httplib::Response& res) {
  const json body = parse_body(req);
  ServedModel& model = model_of(service, body);
  const TextEmbedder* embedder = model.worker->texts();
  if (!embedder) throw HttpError(422, "Validation", str("the model '", model.name, "' has no tokenizer (it embeds images)"));
  const bool specials = bool_field(body, "add_special_tokens", Dialect::Tei, true);
  const std::vector<Input> inputs = tei_inputs(body);
  service.check_count(inputs.size());
  json out = json::array();
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i].kind != Input::Kind::Text) throw HttpError(422, "Validation", str("input ", i, " must be a string"));
    Encoding e;
    try {
      e = embedder->tokenizer().encode(inputs[i].text);
    } catch (const Error& error) {
      throw HttpError(422, "Tokenizer", str("input ", i, ": ", error.what()));
    }
    json tokens = json::array();
    const size_t n = e.input_ids.size();
    for (size_t k = 0; k < n; ++k) {
      // the template's tokens, where the tokenizer says; BERT's and CLIP's are one at each end
      const bool special = e.special_tokens_mask.empty() ? k == 0 || k + 1 == n : e.special_tokens_mask[k] != 0;
      if (special && !specials) continue;
      tokens.push_back({{"id", e.input_ids[k]},
                        {"text", embedder->tokenizer().id_to_token(e.input_ids[k])},
                        {"special", special},
                        {"start", nullptr},
                        {"stop", nullptr}});
    }
    out.push_back(std::move(tokens));
  }
  send_json(res, out);
}

void info(Service& service, const httplib::Request&, httplib::Response& res) {
  const ServedModel& m = *service.models().front();
  const ServeOptions& o = service.options();
  const TextEmbedder* texts = m.worker->texts();
  json models = json::array();
  for (const auto& s : service.models())
    models.push_back({{"name", s->name}, {"path", s->path}, {"description", s->model->description()},
                      {"texts", s->model->has_text()}, {"images", s->model->has_vision()},
                      {"load_seconds", s->load_seconds}});
  send_json(res, {{"model_id", m.path},
                  {"model_sha", nullptr},
                  {"model_dtype", dtype_name(m.model->placement().dtype)},
                  {"model_type", {{"embedding", {{"pooling", pooling_name(texts ? m.model->default_text_pooling()
                                                                                : m.model->default_image_pooling())}}}}},
                  {"max_concurrent_requests", o.max_concurrent_requests},
                  {"max_input_length", texts ? texts->max_length() : 0},
                  {"max_batch_tokens", o.batch.max_batch_tokens},
                  {"max_batch_requests", o.batch.max_batch_requests},
                  {"max_client_batch_size", o.max_client_batch_size},
                  {"tokenization_workers", nullptr},
                  {"version", MMX_SERVE_VERSION},
                  {"models", std::move(models)}});
}

}  // namespace

void add_tei_routes(httplib::Server& http, const Guard& guard) {
  http.Post("/embed", guard(Dialect::Tei, embed));
  http.Post("/similarity", guard(Dialect::Tei, similarity));
  http.Post("/tokenize", guard(Dialect::Tei, tokenize));
  http.Get("/info", guard(Dialect::Tei, info));
}

}  // namespace mmx::serve
