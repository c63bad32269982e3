// What the route files (routes_openai.cpp, routes_tei.cpp, routes_lab.cpp) share: the loaded models, the
// options and metrics, input parsing (texts, token ids, images) and running work on a model's queue while
// the client is still there. Errors are HttpError values that each dialect formats its own way.
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "mmx/collection.hpp"
#include "mmx/model.hpp"
#include "serve/batch_queue.hpp"
#include "serve/image_jobs.hpp"
#include "serve/metrics.hpp"
#include "serve/server.hpp"

namespace mmx::serve {

// The two shapes of an error body: OpenAI's {error:{message,type,code}} and TEI's {error, error_type}.
enum class Dialect { OpenAI, Tei };

struct HttpError : std::runtime_error {
  int status;
  std::string type;  // TEI's error_type ("Validation", "Overloaded"); OpenAI's type is derived from the status
  HttpError(int status_code, std::string error_type, const std::string& message)
      : std::runtime_error(message), status(status_code), type(std::move(error_type)) {}
};

struct ServedModel {
  std::string name, path;
  std::shared_ptr<const Model> model;
  std::unique_ptr<ModelWorker> worker;
  double load_seconds = 0;
};

// One input of an embedding request: a text, token ids, or an image, in request order.
struct Input {
  enum class Kind { Text, Ids, Image } kind = Kind::Text;
  std::string text;          // Text
  std::vector<int64_t> ids;  // Ids
  std::string image;         // Image: a data: URL, or a path under --allow-local-files
};

struct Truncation {
  bool truncate = false;  // false: an input over the model's length is an error (too_long_status)
  bool left = false;      // cut from the start (TEI's truncation_direction "Left")
  int too_long_status = 400;
};

struct Embedded {
  std::vector<std::vector<float>> vectors;  // one per input, in request order
  int64_t tokens = 0;                       // the inputs' tokens (texts and ids), for usage
};

class Service {
 public:
  Service(const ServeOptions& options, Metrics& metrics) : options_(options), metrics_(metrics) {}
  const ServeOptions& options() const { return options_; }
  Metrics& metrics() { return metrics_; }
  std::vector<std::unique_ptr<ServedModel>>& models() { return models_; }
  // The image generators (SDXL folders), each with its job queue (routes_images.cpp).
  std::vector<std::unique_ptr<ImageQueue>>& generators() { return generators_; }
  // The photo collection of --index (nullptr without one).
  Collection* collection() { return collection_.get(); }
  void set_collection(std::unique_ptr<Collection> c) { collection_ = std::move(c); }

  // The model a request names ("" or absent: the default, the first); 404 naming the served ones.
  ServedModel& model(const std::string& name);
  // Embeds the inputs on the model's queue and waits while the client is connected (499 when it left,
  // 504 past the request timeout). Every input is checked before anything is queued.
  Embedded embed(ServedModel& model, const std::vector<Input>& inputs, const Truncation& truncation,
                 const httplib::Request& request, std::optional<Pooling> text_pooling = std::nullopt,
                 std::optional<Pooling> image_pooling = std::nullopt,
                 const std::optional<std::string>& prompt_name = std::nullopt);
  // Runs `work` on the model's worker (after the batches queued before it) and waits as embed() does.
  void run_on_worker(ServedModel& model, std::function<void()> work, const httplib::Request& request);
  // The tokens of a text within the model's length, as the truncation says.
  Encoding encode(const ServedModel& model, const std::string& text, const Truncation& truncation, size_t index,
                  const std::optional<std::string>& prompt_name = std::nullopt) const;
  Image decode_image(const std::string& url, size_t index) const;
  void check_count(size_t inputs) const;  // 422 for none, 413 past max_client_batch_size

 private:
  void wait(const std::shared_ptr<Job>& job, ServedModel& model, const httplib::Request& request);
  const ServeOptions& options_;
  Metrics& metrics_;
  std::vector<std::unique_ptr<ServedModel>> models_;
  std::unique_ptr<Collection> collection_;
  std::vector<std::unique_ptr<ImageQueue>> generators_;  // last: destroyed (threads joined) first
};

// One input of a request: a string (a text, or an image URL when `strings_are_images`), a list of token
// ids, or an image object ({"type":"image_url","image_url":{"url":...}}); 400 for anything else.
Input input_item(const nlohmann::json& item, size_t index, bool strings_are_images);
// Optional fields of a request body: absent or null gives the fallback; a wrong type is the dialect's
// validation status (OpenAI 400, TEI 422) naming the key.
std::string string_field(const nlohmann::json& body, const char* key, Dialect dialect, const std::string& fallback = "");
bool bool_field(const nlohmann::json& body, const char* key, Dialect dialect, bool fallback);
// A JSON body, or 400/422 naming what is wrong.
nlohmann::json parse_body(const httplib::Request& request);
// The error body of a dialect.
std::string error_body(Dialect dialect, int status, const std::string& type, const std::string& message);
// Route registration: `guard` makes a route function a handler with authentication, the concurrency
// limit and error formatting in the route's dialect (server.cpp).
using Handler = std::function<void(const httplib::Request&, httplib::Response&)>;
using Route = void (*)(Service&, const httplib::Request&, httplib::Response&);
using Guard = std::function<Handler(Dialect, Route)>;
void add_openai_routes(httplib::Server& http, const Guard& guard);
void add_tei_routes(httplib::Server& http, const Guard& guard);
void add_lab_routes(httplib::Server& http, const Guard& guard);
void add_search_routes(httplib::Server& http, const Guard& guard);  // routes_search.cpp: --index
void add_image_routes(httplib::Server& http, const Guard& guard);   // routes_images.cpp: SDXL folders
// A diffusers pipeline folder (model_index.json), local or a Hub id in the cache: served as an image generator.
bool is_diffusers_pipeline(const std::string& path);

// Standard base64 (RFC 4648, padding required) for encoding_format "base64" and data: URLs.
std::string base64_encode(const void* data, size_t size);
std::string base64_decode(const std::string& text);  // throws HttpError 400 on a bad character or length

void send_json(httplib::Response& response, const nlohmann::json& body, int status = 200);

// Whether the client of a request has gone (its socket, looked up on the first ask, reads end-of-file).
class ClientConnection {
 public:
  explicit ClientConnection(const httplib::Request& request) : request_(&request) {}
  bool closed();

 private:
  const httplib::Request* request_;
  int fd_ = -2;
};

}  // namespace mmx::serve
