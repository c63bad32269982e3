// mmx serve (src/serve/): an HTTP server holding several models, each behind its own batching queue,
// that answers OpenAI's /v1/embeddings, Hugging Face TEI's routes and the lab's similarity and classify,
// and with --index a photo collection's search and web page.
// Stateless apart from the loaded models: replicas behind a load balancer scale it (deploy/).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mmx/placement.hpp"
#include "serve/batch_queue.hpp"
#include "serve/image_jobs.hpp"

namespace mmx::serve {

struct ModelSpec {
  std::string name;  // what requests call it ("model": NAME)
  std::string path;  // a folder or a Hub id
  Placement placement;
};

struct ServeOptions {
  std::vector<ModelSpec> models;  // the first is the default (TEI routes, requests without "model")
  std::string host = "127.0.0.1";
  int port = 8080;  // 0: a free port (tests)
  std::string api_key;  // non-empty: every route but /health, /ready and /metrics needs "Authorization: Bearer KEY"
  BatchLimits batch;
  int64_t max_concurrent_requests = 512;  // beyond: 429 with Retry-After
  int64_t max_client_batch_size = 256;    // inputs per request; beyond: 413
  size_t payload_limit = 20'000'000;      // request body bytes; beyond: 413 (TEI's is 2 MB, for texts only)
  double request_timeout_s = 60;          // beyond: 504, and the request leaves its queue
  double drain_timeout_s = 30;            // SIGTERM: in-flight requests get this long (the caller's watchdog)
  std::string allow_local_files;          // a folder images may be read from by path ("": none)
  bool json_log = false;                  // access log lines as JSON
  int http_threads = 0;                   // open connections served at once (0: max_concurrent_requests + 64)
  std::string index_db;                   // a photo collection's catalogue: /v1/search and the web page at /
  ImageQueueOptions images;               // the image generators' queues (capacity, job expiry, --lora-dir)
};

class Server {
 public:
  // Loads every model and warms it up (one text and/or one image through its worker) before returning;
  // first checks that host:port can be listened on, so a taken port fails before minutes of loading.
  explicit Server(ServeOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  int bind();   // binds host:port; returns the port (the free one chosen for port 0)
  void run();   // serves until drain() has stopped the listener and every in-flight request is answered
  // Readiness turns 503, the listener closes, in-flight requests finish (from any thread, once).
  void drain();
  bool ready() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mmx::serve
