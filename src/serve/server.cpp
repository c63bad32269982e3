// The server: cpp-httplib (Debian's libcpp-httplib, the library llama.cpp's and stable-diffusion.cpp's
// servers are built on: one header, blocking handlers on a thread pool, which suits handlers that wait on
// a model's queue) with the routes of routes_*.cpp, authentication, the concurrency limit, the access log,
// health, readiness, metrics, and the drain that SIGTERM starts.
#include "serve/server.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <thread>

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.hpp"
#include "mmx/embed.hpp"
#include "mmx/error.hpp"
#include "serve/service.hpp"

namespace mmx::serve {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

namespace {

// When the request being answered on this thread arrived (set by the pre-routing hook; the access log
// and the duration histogram read it).
thread_local Clock::time_point t_request_start{};
thread_local bool t_request_started = false;

std::string utc_now() {
  char buf[32];
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Routes are counted by their pattern, not the raw path, so a scanner cannot grow the metrics.
std::string route_label(const std::string& path) {
  static const char* known[] = {"/v1/embeddings", "/v1/models", "/v1/similarity", "/v1/classify", "/embed", "/similarity",
                                "/tokenize", "/info", "/health", "/ready", "/metrics", "/v1/search", "/v1/collection",
                                "/v1/search/heatmap", "/"};
  if (path.rfind("/v1/thumbnails/", 0) == 0) return "/v1/thumbnails";
  for (const char* k : known)
    if (path == k) return k;
  return "other";
}

Dialect dialect_of(const std::string& path) { return path.rfind("/v1/", 0) == 0 ? Dialect::OpenAI : Dialect::Tei; }

}  // namespace

struct Server::Impl {
  ServeOptions options;
  Metrics metrics;
  Service service{options, metrics};
  httplib::Server http;
  std::atomic<int64_t> in_flight{0};
  std::atomic<bool> draining{false}, ready{false};
  std::atomic<bool> drain_started{false}, run_entered{false};

  explicit Impl(ServeOptions o) : options(std::move(o)) {
    metrics.gauge_callback("mmx_requests_in_flight", {}, [this] { return double(in_flight.load()); });
  }

  void load_models();
  void setup_routes();
  Handler guard(Dialect dialect, Route route);
};

void Server::Impl::load_models() {
  if (options.models.empty() && options.index_db.empty()) usage_error("mmx serve needs at least one --model (or --index DB)");
  if (!options.index_db.empty()) {
    const auto start = Clock::now();
    auto collection = Collection::open(options.index_db);
    // Warm-up: one text query (CLIP) or one image query, so the first visitor does not load the tower.
    SearchOptions one;
    one.top_k = 1;
    if (collection->size() > 0) {
      try {
        collection->search({{QueryTerm::Kind::Text, "a photo", 1.f}}, one);
      } catch (const Error& e) {
        if (e.kind() != ErrorKind::Usage) throw;  // an image-only model: its queries are images
      }
    }
    log_info("serve: collection ", options.index_db, " (", collection->size(), " vectors of ", collection->model_name(),
             collection->has_hnsw() ? ", HNSW graph" : "", ") ready in ",
             std::chrono::duration<double>(Clock::now() - start).count(), " s");
    service.set_collection(std::move(collection));
  }
  for (const ModelSpec& spec : options.models) {
    for (const auto& m : service.models())
      if (m->name == spec.name) usage_error("two models are named '", spec.name, "': name them (--model NAME=PATH)");
    for (const auto& g : service.generators())
      if (g->name() == spec.name) usage_error("two models are named '", spec.name, "': name them (--model NAME=PATH)");
    const auto start = Clock::now();
    if (is_diffusers_pipeline(spec.path)) {  // an image generator: its pipeline, loaded once, and a job queue
      ImageQueueOptions queue = options.images;
      queue.turbo = SDXLPipeline::is_turbo(spec.path);
      service.generators().push_back(std::make_unique<ImageQueue>(spec.name, spec.path, SDXLPipeline::load(spec.path, "", spec.placement),
                                                                   queue, metrics));
      const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
      metrics.set("mmx_model_load_seconds", {{"model", spec.name}}, seconds);
      log_info("serve: image model '", spec.name, "' (SDXL pipeline", queue.turbo ? ", Turbo" : "", ") loaded in ", seconds, " s");
      continue;
    }
    auto served = std::make_unique<ServedModel>();
    served->name = spec.name;
    served->model = Model::load(spec.path, spec.placement);
    served->path = served->model->path();
    auto texts = served->model->has_text() ? std::make_unique<TextEmbedder>(served->model) : nullptr;
    auto images = served->model->has_vision() ? std::make_unique<ImageEmbedder>(served->model) : nullptr;
    served->worker = std::make_unique<ModelWorker>(spec.name, std::move(texts), std::move(images), options.batch, metrics);
    // Warm-up: one text and one image through the worker, so the first client does not pay for first touches.
    if (served->worker->texts()) {
      auto job = std::make_shared<Job>();
      job->rows.push_back(served->worker->texts()->tokenizer().encode("warm up"));
      served->worker->submit(job);
      job->wait_until(Clock::time_point::max());
      if (job->error) std::rethrow_exception(job->error);
    }
    if (served->worker->images()) {
      auto job = std::make_shared<Job>();
      job->kind = Job::Kind::Images;
      Image grey;  // any size: the processor resizes it to the model's
      grey.width = grey.height = 256;
      grey.rgb.assign(size_t(256 * 256 * 3), 127);
      job->images.push_back(std::move(grey));
      served->worker->submit(job);
      job->wait_until(Clock::time_point::max());
      if (job->error) std::rethrow_exception(job->error);
    }
    served->load_seconds = std::chrono::duration<double>(Clock::now() - start).count();
    metrics.set("mmx_model_load_seconds", {{"model", spec.name}}, served->load_seconds);
    log_info("serve: model '", spec.name, "' (", served->model->description(), ") loaded and warmed in ",
             served->load_seconds, " s");
    service.models().push_back(std::move(served));
  }
}

Handler Server::Impl::guard(Dialect dialect, Route route) {
  return [this, dialect, route](const httplib::Request& req, httplib::Response& res) {
    if (!options.api_key.empty() && req.get_header_value("Authorization") != "Bearer " + options.api_key) {
      res.status = 401;
      res.set_content(error_body(dialect, 401, "Unauthorized", "a valid API key is needed (Authorization: Bearer KEY)"),
                      "application/json");
      return;
    }
    if (draining) {
      res.status = 503;
      res.set_content(error_body(dialect, 503, "Unhealthy", "the server is shutting down"), "application/json");
      return;
    }
    if (++in_flight > options.max_concurrent_requests) {
      --in_flight;
      metrics.add("mmx_rejected_requests_total", {{"reason", "overloaded"}});
      res.status = 429;
      res.set_header("Retry-After", "1");
      res.set_content(error_body(dialect, 429, "Overloaded",
                                 str("model is overloaded: more than ", options.max_concurrent_requests,
                                     " requests in flight (--max-concurrent-requests)")),
                      "application/json");
      return;
    }
    struct Release {
      std::atomic<int64_t>& n;
      ~Release() { --n; }
    } release{in_flight};
    try {
      route(service, req, res);
    } catch (const HttpError& e) {
      res.status = e.status;
      res.set_content(error_body(dialect, e.status, e.type, e.what()), "application/json");
    } catch (const Error& e) {
      // mmx's usage errors are the client's (a pooling the model lacks); runtime errors are the model's.
      const int status = e.kind() == ErrorKind::Usage ? (dialect == Dialect::Tei ? 422 : 400) : (dialect == Dialect::Tei ? 424 : 500);
      res.status = status;
      res.set_content(error_body(dialect, status, e.kind() == ErrorKind::Usage ? "Validation" : "Backend", e.what()),
                      "application/json");
    } catch (const std::exception& e) {
      res.status = 500;
      res.set_content(error_body(dialect, 500, "Backend", str("internal error: ", e.what())), "application/json");
    }
  };
}

void Server::Impl::setup_routes() {
  http.new_task_queue = [this] {
    // cpp-httplib gives each open connection a thread for as long as it is kept alive, so the threads bound
    // the clients served at once, not the requests: a connection beyond them waits until one idles out.
    // Requests past the concurrency limit still need a thread to be answered 429.
    const int threads = options.http_threads > 0 ? options.http_threads : int(options.max_concurrent_requests) + 64;
    return new httplib::ThreadPool(size_t(std::max(4, threads)));
  };
  http.set_payload_max_length(options.payload_limit);
  http.set_keep_alive_timeout(5);
  http.set_keep_alive_max_count(1000);  // httplib's default closes a connection after 5 requests
  http.set_tcp_nodelay(true);           // a response's header and body as separate writes meet delayed ACKs (40 ms)
  http.set_read_timeout(30);
  http.set_pre_routing_handler([](const httplib::Request&, httplib::Response&) {
    t_request_start = Clock::now();
    t_request_started = true;
    return httplib::Server::HandlerResponse::Unhandled;
  });
  // Bodies for the statuses httplib answers itself (404 unknown route, 413 payload, 400 bad request).
  http.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    const bool form = req.get_header_value("Content-Type").rfind("application/x-www-form-urlencoded", 0) == 0;
    const std::string message =
        res.status == 404   ? str("no route ", req.method, " ", req.path)
        : res.status == 413 ? (form ? "a form-encoded body is limited to 8 KB: send Content-Type: application/json"
                                    : "the request body is larger than --payload-limit")
                            : str("HTTP ", res.status);
    res.set_content(error_body(dialect_of(req.path), res.status, res.status == 413 ? "Validation" : "Validation", message),
                    "application/json");
  });
  http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    const double seconds = t_request_started ? std::chrono::duration<double>(Clock::now() - t_request_start).count() : 0;
    t_request_started = false;
    const std::string route = route_label(req.path);
    metrics.add("mmx_requests_total", {{"route", route}, {"status", std::to_string(res.status)}});
    metrics.observe("mmx_request_duration_seconds", {{"route", route}}, seconds);
    if (route == "/health" || route == "/ready" || route == "/metrics") return;  // probes and scrapes are not logged
    if (options.json_log) {
      std::fprintf(stderr, "%s\n",
                   json{{"time", utc_now()},        {"remote", req.remote_addr}, {"method", req.method},
                        {"path", req.path},         {"status", res.status},      {"duration_ms", seconds * 1e3},
                        {"bytes", res.body.size()}}
                       .dump(-1, ' ', false, json::error_handler_t::replace)
                       .c_str());
    } else {
      std::fprintf(stderr, "%s %s %s %s %d %.1f ms %zu B\n", utc_now().c_str(), req.remote_addr.c_str(), req.method.c_str(),
                   req.path.c_str(), res.status, seconds * 1e3, res.body.size());
    }
  });

  http.Get("/health", [](const httplib::Request&, httplib::Response& res) { send_json(res, json::object()); });
  http.Get("/ready", [this](const httplib::Request&, httplib::Response& res) {
    if (ready && !draining) send_json(res, {{"status", "ready"}});
    else send_json(res, {{"status", draining ? "draining" : "loading"}}, 503);
  });
  http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics.render(), "text/plain; version=0.0.4; charset=utf-8");
  });
  const Guard g = [this](Dialect d, Route r) { return guard(d, r); };
  add_openai_routes(http, g);
  add_tei_routes(http, g);
  add_lab_routes(http, g);
  add_search_routes(http, g);
  add_image_routes(http, g);
}

namespace {

// Whether host:port can be bound now (with SO_REUSEADDR, as the server binds it).
void check_address(const std::string& host, int port) {
  if (port == 0) return;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) != 0 || !found)
    usage_error("--host ", host, ": not an address");
  bool ok = false;
  for (addrinfo* a = found; a && !ok; a = a->ai_next) {
    const int fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
    if (fd < 0) continue;
    const int yes = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    ok = ::bind(fd, a->ai_addr, a->ai_addrlen) == 0;
    close(fd);
  }
  freeaddrinfo(found);
  if (!ok) fail("cannot listen on ", host, ":", port, " (in use, or not an address of this machine)");
}

}  // namespace

Server::Server(ServeOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {
  check_address(impl_->options.host, impl_->options.port);
  impl_->load_models();
  impl_->setup_routes();
}

Server::~Server() = default;

int Server::bind() {
  const int port = impl_->options.port == 0 ? impl_->http.bind_to_any_port(impl_->options.host)
                                            : (impl_->http.bind_to_port(impl_->options.host, impl_->options.port)
                                                   ? impl_->options.port
                                                   : -1);
  if (port < 0)
    fail("cannot listen on ", impl_->options.host, ":", impl_->options.port, " (in use, or not an address of this machine)");
  return port;
}

void Server::run() {
  // A drain that came first (SIGTERM while the models loaded) is seen here or sees run_entered: either way
  // the listener never blocks with nobody left to stop it.
  impl_->run_entered = true;
  if (impl_->draining) return;
  impl_->ready = true;
  impl_->http.listen_after_bind();  // returns once drain() stopped it and the in-flight requests are answered
  impl_->ready = false;
}

void Server::drain() {
  if (impl_->drain_started.exchange(true)) return;
  impl_->draining = true;
  log_info("serve: draining: ", impl_->in_flight.load(), " requests in flight");
  if (impl_->run_entered)  // stop() only stops a listener that runs: wait for it to start
    for (int i = 0; i < 500 && !impl_->http.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  impl_->http.stop();
}

bool Server::ready() const { return impl_->ready && !impl_->draining; }

}  // namespace mmx::serve
