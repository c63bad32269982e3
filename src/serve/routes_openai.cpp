// OpenAI's embeddings API (POST /v1/embeddings, GET /v1/models), as the official clients send it:
// `input` a string, a list of strings, token ids or lists of ids, and — for models that embed images —
// {"type":"image_url","image_url":{"url":"data:image/png;base64,..."}} objects, or infinity's
// "modality":"image" with the URLs as strings. Vectors are L2-normalised as OpenAI's and TEI's are;
// "normalize": false (an mmx extension) returns the model's raw features (the lab's numbers).
#include <cstring>

#include "pipelines/pooling.hpp"
#include "serve/service.hpp"

namespace mmx::serve {
namespace {

using nlohmann::json;

// An image object of the OpenAI content-part shape: its URL.
bool image_url_of(const json& item, std::string& url) {
  if (!item.is_object()) return false;
  const json* u = nullptr;
  if (item.contains("image_url")) u = &item["image_url"];
  else if (item.contains("image")) u = &item["image"];
  if (!u) return false;
  if (u->is_string()) url = u->get<std::string>();
  else if (u->is_object() && u->contains("url") && (*u)["url"].is_string()) url = (*u)["url"].get<std::string>();
  else throw HttpError(400, "Validation", "an image input needs image_url.url as a string");
  return true;
}

std::vector<int64_t> token_ids(const json& list, size_t index) {
  std::vector<int64_t> ids;
  for (const json& v : list) {
    if (!v.is_number_integer()) throw HttpError(400, "Validation", str("input ", index, ": token ids must be integers"));
    ids.push_back(v.get<int64_t>());
  }
  return ids;
}

}  // namespace

Input input_item(const json& item, size_t index, bool strings_are_images) {
  Input x;
  std::string url;
  if (item.is_string()) {
    x.kind = strings_are_images ? Input::Kind::Image : Input::Kind::Text;
    (strings_are_images ? x.image : x.text) = item.get<std::string>();
  } else if (item.is_array()) {
    x.kind = Input::Kind::Ids;
    x.ids = token_ids(item, index);
  } else if (image_url_of(item, url)) {
    x.kind = Input::Kind::Image;
    x.image = url;
  } else {
    throw HttpError(400, "Validation",
                    str("input ", index, " must be a string, a list of token ids, or {\"type\":\"image_url\",...}"));
  }
  return x;
}

namespace {

std::vector<Input> parse_input(const json& body) {
  if (!body.contains("input")) throw HttpError(400, "Validation", "'input' is required");
  const json& in = body["input"];
  const std::string modality = string_field(body, "modality", Dialect::OpenAI, "text");
  if (modality != "text" && modality != "image") throw HttpError(400, "Validation", "'modality' must be \"text\" or \"image\"");
  const bool images = modality == "image";
  std::vector<Input> inputs;
  auto one = [&](const json& item, size_t index) { inputs.push_back(input_item(item, index, images)); };
  if (in.is_string()) {
    one(in, 0);
  } else if (in.is_array()) {
    if (!in.empty() && in.front().is_number()) {  // one list of token ids
      Input x;
      x.kind = Input::Kind::Ids;
      x.ids = token_ids(in, 0);
      inputs.push_back(std::move(x));
    } else {
      for (size_t i = 0; i < in.size(); ++i) one(in[i], i);
    }
  } else if (in.is_object()) {
    one(in, 0);
  } else {
    throw HttpError(400, "Validation", "'input' must be a string, a list of strings, token ids, or image objects");
  }
  return inputs;
}

void embeddings(Service& service, const httplib::Request& req, httplib::Response& res) {
  const json body = parse_body(req);
  ServedModel& model = service.model(string_field(body, "model", Dialect::OpenAI));
  const std::string format = string_field(body, "encoding_format", Dialect::OpenAI, "float");
  if (format != "float" && format != "base64")
    throw HttpError(400, "Validation", "'encoding_format' must be \"float\" or \"base64\"");
  string_field(body, "user", Dialect::OpenAI);  // accepted, as OpenAI does; checked for its type only
  const bool normalize = bool_field(body, "normalize", Dialect::OpenAI, true);
  std::optional<int64_t> dimensions;
  if (body.contains("dimensions") && !body["dimensions"].is_null()) {
    if (!body["dimensions"].is_number_integer() || body["dimensions"].get<int64_t>() < 1)
      throw HttpError(400, "Validation", "'dimensions' must be a positive integer");
    dimensions = body["dimensions"].get<int64_t>();
  }
  const std::vector<Input> inputs = parse_input(body);
  Truncation truncation;
  truncation.too_long_status = 400;
  Embedded e = service.embed(model, inputs, truncation, req);

  json data = json::array();
  for (size_t i = 0; i < e.vectors.size(); ++i) {
    std::vector<float>& v = e.vectors[i];
    if (dimensions) {  // Matryoshka-style: the first `dimensions` features, renormalised
      if (*dimensions > int64_t(v.size()))
        throw HttpError(400, "Validation", str("'dimensions' ", *dimensions, " exceeds the model's ", v.size()));
      v.resize(size_t(*dimensions));
    }
    if (normalize) detail::l2_normalize(v.data(), int64_t(v.size()));
    json item = {{"object", "embedding"}, {"index", i}};
    if (format == "base64") item["embedding"] = base64_encode(v.data(), v.size() * sizeof(float));  // little-endian f32
    else item["embedding"] = v;
    data.push_back(std::move(item));
  }
  send_json(res, {{"object", "list"},
                  {"data", std::move(data)},
                  {"model", model.name},
                  {"usage", {{"prompt_tokens", e.tokens}, {"total_tokens", e.tokens}}}});
}

void models(Service& service, const httplib::Request&, httplib::Response& res) {
  json data = json::array();
  for (const auto& m : service.models())
    data.push_back({{"id", m->name}, {"object", "model"}, {"created", 0}, {"owned_by", "mmx"}});
  for (const auto& g : service.generators())
    data.push_back({{"id", g->name()}, {"object", "model"}, {"created", 0}, {"owned_by", "mmx"}, {"type", "image"}});
  send_json(res, {{"object", "list"}, {"data", std::move(data)}});
}

}  // namespace

void add_openai_routes(httplib::Server& http, const Guard& guard) {
  http.Post("/v1/embeddings", guard(Dialect::OpenAI, embeddings));
  http.Get("/v1/models", guard(Dialect::OpenAI, models));
}

}  // namespace mmx::serve
