// mmx serve: the embedding server (src/serve/), its options, and the signals that drain it.
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <thread>

#include <fcntl.h>
#include <unistd.h>

#include "cli/commands.hpp"
#include "core/log.hpp"
#include "serve/server.hpp"

namespace mmx::cli {

const Command kServeCommand{
    "serve",
    "mmx serve --model [NAME=]MODEL[,device=D][,dtype=T] ... [--host 127.0.0.1] [--port 8080] [options]",
    "Serve embeddings and images over HTTP: OpenAI's /v1/embeddings and /v1/images, TEI's routes, similarity, classify, generation jobs.",
    {
        {"model", "[NAME=]MODEL", "a model to serve, by the name requests use (default: the folder's name): an embedding "
                                  "model (the first is the default) or an SDXL pipeline folder (image generation). "
                                  "Append ,device=cuda and/or ,dtype=f16 to place it",
         true},
        {"host", "ADDR", "the address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 for every interface)"},
        {"port", "N", "the port (default 8080; 0 picks a free one and prints it)"},
        {"api-key", "KEY", "require \"Authorization: Bearer KEY\" (default: MMX_API_KEY; none: open)"},
        {"max-batch-tokens", "N", "padded tokens (longest × texts) one batch may hold (default 16384)"},
        {"max-batch-requests", "N", "requests one batch may hold (default 64)"},
        {"max-batch-images", "N", "images one batch may hold (default 32)"},
        {"max-concurrent-requests", "N", "requests in flight before 429 Too Many Requests (default 512)"},
        {"max-client-batch-size", "N", "inputs one request may hold before 413 (default 256)"},
        {"payload-limit", "BYTES", "the largest request body before 413 (default 20000000: a few base64 photos)"},
        {"request-timeout", "SECONDS", "a request still waiting after this gets 504 and leaves its queue (default 60)"},
        {"drain-timeout", "SECONDS", "on SIGTERM, how long in-flight requests may still take (default 30)"},
        {"index", "DB", "serve a photo collection (mmx index): POST /v1/search, thumbnails, and the web page at /"},
        {"lora-dir", "DIR", "image requests may name LoRA adapters (\"loras\": [\"name:0.8\"], <lora:name:0.8> in the prompt) found as NAME.safetensors in DIR"},
        {"image-queue", "N", "image jobs queued and running per generator before 429 (default 8)"},
        {"job-expiry", "SECONDS", "how long a finished image job waits to be fetched (default 3600; 60 s after it was fetched)"},
        {"allow-local-files", "DIR", "let image inputs name files inside DIR (default: images come as data: URLs only)"},
        {"log-format", "FORMAT", "access log lines on stderr: text (default) or json", false, {"text", "json"}},
        {"http-threads", "N", "client connections served at once, one thread each while kept alive (default "
                               "--max-concurrent-requests + 64)"},
    },
    R"(Routes (JSON in and out):
  POST /v1/embeddings   OpenAI: {"model", "input": text | [texts] | [ids] | [[ids]] | image objects,
                        "encoding_format": "float" | "base64", "dimensions"}; images as
                        {"type":"image_url","image_url":{"url":"data:image/png;base64,..."}}, or strings
                        with "modality":"image". Vectors are L2-normalised ("normalize": false: raw).
  GET  /v1/models       OpenAI: the served models
  POST /embed           TEI: {"inputs", "normalize", "truncate", "truncation_direction"} -> [[floats]]
  POST /similarity      TEI: {"inputs": {"source_sentence", "sentences"}} -> cosine scores
  POST /tokenize        TEI: {"inputs", "add_special_tokens"} -> [[{"id", "text", "special"}]]
  GET  /info            TEI: the model and the limits
  POST /v1/similarity   {"model", "rows": [...], "columns": [...], "score": cosine | dot | clip-logits,
                        "softmax": none | dim0 | dim1, "text_pooling", "image_pooling"} -> the matrix
  POST /v1/classify     {"model", "images": [...], "labels": [...], "template", "top_k"}
  with an SDXL pipeline folder as a --model (model_index.json; SDXL-Turbo detected from its scheduler):
  POST /v1/images/generations  OpenAI: {"model", "prompt", "n", "size": "1024x1024", "response_format": "b64_json",
                        "output_format": png | jpeg | webp, "output_compression"} plus "negative_prompt",
                        "seed", "steps", "guidance", "sampler", "loras": ["name:0.8"] -> {"created", "data":
                        [{"b64_json", "seed"}]}; the PNG carries A1111's parameters. Answered when done.
  POST /v1/images/edits multipart: "image" file, optional "mask" (white repaints), "prompt", "strength", ...
  POST /v1/jobs         the same JSON ("image"/"mask" as data: URLs) -> 202 {"id", "status", "queue_position"}
  GET  /v1/jobs/ID      {"status": queued | running | done | failed | cancelled, "step", "steps",
                        "eta_seconds", "data": [{"b64_json", "seed", "parameters"}] when done}
  DELETE /v1/jobs/ID    cancel (a running job stops at its next step), or drop a finished one
  GET  /v1/jobs/ID/events  server-sent events: "progress" per step, then "done" | "failed" | "cancelled"
  with --index DB (a catalogue of mmx index):
  GET  /                the web page: search box, thumbnail grid, drop an image, the lab's heatmap
  POST /v1/search       {"query": "2:cat + sofa - dog" | "text" | "image": data URL | "file_id": N,
                         "queries": [{"text"|"image"|"file_id", "weight"}], "negative": [...], "top_k",
                         "threshold", "method": auto|exact|hnsw, "duplicates": true}
  POST /v1/search/heatmap {"file_ids": [...], "captions": [...]}: the lab's matrix and its SVG
  GET  /v1/thumbnails/ID  a 256-pixel JPEG, cached in DB.thumbnails/
  GET  /health          liveness; GET /ready: 200 once every model is loaded and warm, 503 while draining
  GET  /metrics         Prometheus: requests by route and status, queue sizes, batch sizes and tokens,
                        queue and inference latency, model load time, resident memory

Requests of all clients share batches: each model has one queue and one worker using every thread;
a batch takes the queued requests that fit --max-batch-tokens, sorted by length inside. Errors are
OpenAI's {"error": {"message", "type", "code"}} on /v1/ routes and TEI's {"error", "error_type"} on
the others; a client error is never a 5xx. SIGTERM or SIGINT drains: /ready turns 503, the listener
closes, in-flight requests finish, exit 0 (1 past --drain-timeout).

example:
  mmx serve --model bert=tests/data/models/bert-tiny --model clip=tests/data/models/clip-tiny --port 8080
  curl -s localhost:8080/v1/embeddings -H 'Content-Type: application/json' \
       -d '{"model": "bert", "input": ["Cat with paint", "rock statue"]}'
  mmx serve --model sdxl=tests/data/models/sdxl-tiny --lora-dir tests/data/lora --port 8080
  curl -s localhost:8080/v1/jobs -H 'Content-Type: application/json' \
       -d '{"prompt": "a castle <lora:sdxl-tiny-peft:0.8>", "steps": 4, "seed": 1}'
)",
};

namespace {

int g_signal_pipe[2] = {-1, -1};

extern "C" void on_signal(int) {
  const char c = 1;
  [[maybe_unused]] const ssize_t n = write(g_signal_pipe[1], &c, 1);  // async-signal-safe
}

serve::ModelSpec model_spec(const std::string& arg, const Placement& shared) {
  serve::ModelSpec spec;
  spec.placement = shared;
  std::string rest = arg;
  // ,device=... and ,dtype=... at the end
  for (;;) {
    const size_t comma = rest.rfind(',');
    if (comma == std::string::npos) break;
    const std::string option = rest.substr(comma + 1);
    if (option.rfind("device=", 0) == 0) spec.placement.device = Device::parse(option.substr(7));
    else if (option.rfind("dtype=", 0) == 0) spec.placement.dtype = dtype_from_name(option.substr(6));
    else break;
    rest.resize(comma);
  }
  const size_t eq = rest.find('=');
  if (eq != std::string::npos && eq > 0 && rest.find('/') > eq) {
    spec.name = rest.substr(0, eq);
    spec.path = rest.substr(eq + 1);
  } else {
    spec.path = rest;
    std::string p = rest;
    while (p.size() > 1 && p.back() == '/') p.pop_back();
    spec.name = p.substr(p.find_last_of('/') == std::string::npos ? 0 : p.find_last_of('/') + 1);
  }
  if (spec.name.empty() || spec.path.empty()) usage_error("--model '", arg, "': give [NAME=]MODEL");
  spec.placement.check();
  return spec;
}

}  // namespace

int run_serve(const Args& args) {
  serve::ServeOptions o;
  for (const std::string& m : args.all("model")) o.models.push_back(model_spec(m, placement_of(args)));
  o.index_db = args.get("index").value_or("");
  if (o.models.empty() && o.index_db.empty()) usage_error("--model is required: mmx serve --model NAME=MODEL (or --index DB)");
  o.host = args.get("host").value_or("127.0.0.1");
  const int64_t port = args.get_int("port", 0).value_or(8080);
  if (port > 65535) usage_error("--port ", port, ": a port is 0 to 65535");
  o.port = int(port);
  if (const char* key = std::getenv("MMX_API_KEY")) o.api_key = key;
  o.api_key = args.get("api-key").value_or(o.api_key);
  o.batch.max_batch_tokens = args.get_int("max-batch-tokens", 1).value_or(o.batch.max_batch_tokens);
  o.batch.max_batch_requests = args.get_int("max-batch-requests", 1).value_or(o.batch.max_batch_requests);
  o.batch.max_batch_images = args.get_int("max-batch-images", 1).value_or(o.batch.max_batch_images);
  o.max_concurrent_requests = args.get_int("max-concurrent-requests", 1).value_or(o.max_concurrent_requests);
  o.max_client_batch_size = args.get_int("max-client-batch-size", 1).value_or(o.max_client_batch_size);
  o.payload_limit = size_t(args.get_int("payload-limit", 1).value_or(int64_t(o.payload_limit)));
  o.request_timeout_s = args.get_double("request-timeout", 0.001).value_or(o.request_timeout_s);
  o.drain_timeout_s = args.get_double("drain-timeout", 0).value_or(o.drain_timeout_s);
  o.images.lora_dir = args.get("lora-dir").value_or("");
  if (!o.images.lora_dir.empty() && access(o.images.lora_dir.c_str(), R_OK | X_OK) != 0)
    usage_error("--lora-dir ", o.images.lora_dir, ": not a readable folder");
  o.images.capacity = size_t(args.get_int("image-queue", 1).value_or(int64_t(o.images.capacity)));
  o.images.keep_seconds = args.get_double("job-expiry", 1).value_or(o.images.keep_seconds);
  o.allow_local_files = args.get("allow-local-files").value_or("");
  if (!o.allow_local_files.empty() && access(o.allow_local_files.c_str(), R_OK | X_OK) != 0)
    usage_error("--allow-local-files ", o.allow_local_files, ": not a readable folder");
  const std::string format = args.get("log-format").value_or("text");
  if (format != "text" && format != "json") usage_error("--log-format ", format, ": text or json");
  o.json_log = format == "json";
  o.http_threads = int(args.get_int("http-threads", 1).value_or(0));
  if (o.max_concurrent_requests > 100000 || o.http_threads > 100000)
    usage_error("--max-concurrent-requests and --http-threads: at most 100000");

  // Signals only write a byte; a thread reads it and drains (nothing unsafe runs in the handler).
  if (pipe2(g_signal_pipe, O_CLOEXEC) != 0) fail("serve: cannot create a pipe for signals");
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
  std::signal(SIGPIPE, SIG_IGN);  // a client that left mid-answer is an error value, not a death

  const double drain_timeout = o.drain_timeout_s;
  const std::string host = o.host;
  serve::Server server(std::move(o));
  const int bound = server.bind();
  std::fprintf(stderr, "mmx serve: listening on http://%s:%d (ready)\n", host.c_str(), bound);
  std::fflush(stderr);
  std::thread watcher([&server, drain_timeout] {
    char c = 0;
    while (read(g_signal_pipe[0], &c, 1) < 0 && errno == EINTR) {
    }
    if (c == 0) return;  // the server stopped by itself
    server.drain();
    // In-flight requests get drain_timeout; then the process ends without them.
    std::thread([drain_timeout] {
      std::this_thread::sleep_for(std::chrono::duration<double>(drain_timeout));
      std::fprintf(stderr, "mmx serve: requests still in flight after --drain-timeout %.0f s; exiting\n", drain_timeout);
      std::_Exit(1);
    }).detach();
  });
  server.run();
  log_info("serve: drained, exiting");
  const char zero = 0;
  [[maybe_unused]] const ssize_t n = write(g_signal_pipe[1], &zero, 1);
  watcher.join();
  return 0;
}

}  // namespace mmx::cli
