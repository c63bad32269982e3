// Image generation over HTTP (mmx serve --model NAME=SDXL_FOLDER): OpenAI's POST /v1/images/generations
// and /v1/images/edits (multipart image + mask), answered when the image is ready, and the asynchronous
// job API — POST /v1/jobs, GET /v1/jobs/{id} (status, step, ETA, the images), DELETE /v1/jobs/{id}
// (cancel, or drop a finished job), GET /v1/jobs/{id}/events (server-sent progress) — over one bounded
// queue per generator (image_jobs.hpp). Beside OpenAI's fields a request takes seed, steps, guidance,
// sampler, negative_prompt, strength and loras as plain top-level fields.
#include <random>

#include "mmx/error.hpp"
#include "mmx/lora.hpp"
#include "serve/image_jobs.hpp"
#include "serve/service.hpp"

namespace mmx::serve {
namespace {

using nlohmann::json;

ImageQueue& generator_of(Service& service, const json& body) {
  const std::string name = string_field(body, "model", Dialect::OpenAI);
  auto& generators = service.generators();
  if (generators.empty())
    throw HttpError(404, "NotFound", "this server generates no images: serve a diffusers SDXL folder (--model NAME=FOLDER)");
  if (name.empty()) return *generators.front();
  for (auto& g : generators)
    if (g->name() == name) return *g;
  std::string names;
  for (auto& g : generators) names += (names.empty() ? "" : ", ") + g->name();
  throw HttpError(404, "Validation", str("the image model '", name, "' is not served here (served: ", names, ")"));
}

// A number given as a JSON number or, from a multipart form, as text.
std::optional<double> number(const json& body, const char* key) {
  if (!body.contains(key) || body[key].is_null()) return std::nullopt;
  const json& v = body[key];
  if (v.is_number()) return v.get<double>();
  if (v.is_string()) {
    try {
      size_t used = 0;
      const double d = std::stod(v.get<std::string>(), &used);
      if (used == v.get<std::string>().size() && std::isfinite(d)) return d;
    } catch (const std::exception&) {
    }
  }
  throw HttpError(400, "Validation", str("'", key, "' must be a number"));
}

int64_t integer(const json& body, const char* key, int64_t fallback, int64_t low, int64_t high) {
  const auto v = number(body, key);
  if (!v) return fallback;
  if (*v != std::floor(*v) || *v < double(low) || *v > double(high))
    throw HttpError(400, "Validation", str("'", key, "' must be a whole number from ", low, " to ", high));
  return int64_t(*v);
}

// Adapters named by a request: file names in the server's --lora-dir (never paths: a client does not pick
// server files), as ["name:0.8", {"name": "x", "weight": 0.5}], or <lora:name:w> tags in the prompt.
std::vector<LoraWeight> request_loras(const json& body, const ImageQueue& queue, std::string& prompt) {
  const std::string& dir = queue.options().lora_dir;
  std::vector<LoraWeight> out;
  try {
    if (body.contains("loras") && !body["loras"].is_null()) {
      if (!body["loras"].is_array()) throw HttpError(400, "Validation", "'loras' is a list of \"name:weight\" or {name, weight}");
      for (const json& item : body["loras"]) {
        const bool named = item.is_object() && item.contains("name") && item["name"].is_string();
        if (!item.is_string() && !named)
          throw HttpError(400, "Validation", "'loras' items are \"name:weight\" or {\"name\": ..., \"weight\": ...}");
        const std::string spec = named ? item["name"].get<std::string>() : item.get<std::string>();
        if (spec.find('/') != std::string::npos || spec.find('\\') != std::string::npos || spec.find("..") != std::string::npos)
          throw HttpError(400, "Validation", str("LoRA '", spec, "': give a name from the server's --lora-dir, not a path"));
        if (named) {
          out.push_back(find_lora(spec, number(item, "weight").value_or(1.0), dir));
        } else {  // "name:weight", read as the prompt's tag is
          const auto one = extract_prompt_loras("<lora:" + spec + ">", dir).loras;
          out.insert(out.end(), one.begin(), one.end());
        }
      }
    }
    const PromptLoras tagged = extract_prompt_loras(prompt, dir);
    prompt = tagged.prompt;
    out.insert(out.end(), tagged.loras.begin(), tagged.loras.end());
  } catch (const Error& e) {
    throw HttpError(400, "Validation", dir.empty() ? str(e.what(), " (this server was started without --lora-dir)") : e.what());
  }
  return out;
}

// The job a request asks for, checked against the model's configs before it is queued.
std::shared_ptr<ImageJob> image_job(const json& body, ImageQueue& queue, std::optional<Image> image, std::optional<Image> mask) {
  auto job = std::make_shared<ImageJob>();
  GenerateOptions& o = job->options;
  if (!body.contains("prompt") || !body["prompt"].is_string() || body["prompt"].get<std::string>().empty())
    throw HttpError(400, "Validation", "'prompt' is required: a non-empty string");
  job->prompt_as_written = body["prompt"].get<std::string>();
  if (job->prompt_as_written.size() > 20000) throw HttpError(400, "Validation", "'prompt' is longer than 20000 bytes");
  o.prompt = job->prompt_as_written;
  o.loras = request_loras(body, queue, o.prompt);
  if (body.contains("negative_prompt") && !body["negative_prompt"].is_null())
    o.negative_prompt = string_field(body, "negative_prompt", Dialect::OpenAI);
  const bool turbo = queue.options().turbo;
  o.steps = integer(body, "steps", turbo ? 1 : 50, 1, 1000);
  std::optional<double> guidance;  // mmx's name, diffusers' and A1111's
  for (const char* key : {"guidance", "guidance_scale", "cfg_scale"})
    if (!guidance) guidance = number(body, key);
  o.guidance_scale = float(guidance.value_or(turbo ? 0.0 : mask ? 7.5 : 5.0));
  if (o.guidance_scale < 0 || o.guidance_scale > 100) throw HttpError(400, "Validation", "'guidance' is 0 to 100");
  o.scheduler = string_field(body, body.contains("sampler") ? "sampler" : "scheduler", Dialect::OpenAI);
  if (turbo) o.scheduler_settings = R"({"timestep_spacing": "trailing"})";
  o.seed = body.contains("seed") && !body["seed"].is_null() ? uint64_t(integer(body, "seed", 0, 0, int64_t(1) << 53))
                                                             : std::random_device{}() & ((uint64_t(1) << 32) - 1);
  job->n = integer(body, "n", 1, 1, 8);
  const std::string size = string_field(body, "size", Dialect::OpenAI, "auto");
  if (size != "auto") {
    int w = 0, h = 0;
    char tail = 0;
    if (std::sscanf(size.c_str(), "%dx%d%c", &w, &h, &tail) != 2 || w <= 0 || h <= 0)
      throw HttpError(400, "Validation", str("'size' is WIDTHxHEIGHT (\"1024x1024\") or \"auto\", got '", size, "'"));
    o.width = w;
    o.height = h;
  } else if (turbo && !image) {
    o.width = o.height = 512;
  }
  const std::string format = string_field(body, "response_format", Dialect::OpenAI, "b64_json");
  if (format != "b64_json")
    throw HttpError(400, "Validation", str("response_format '", format, "': mmx serve returns images inline (b64_json); it hosts no URLs"));
  job->output_format = string_field(body, "output_format", Dialect::OpenAI, "png");
  if (job->output_format == "jpg") job->output_format = "jpeg";
  if (job->output_format != "png" && job->output_format != "jpeg" && job->output_format != "webp")
    throw HttpError(400, "Validation", str("output_format '", job->output_format, "': png, jpeg or webp"));
  job->quality = int(integer(body, "output_compression", 100, 0, 100));
  if (image) {
    o.image = std::move(image);
    o.mask = std::move(mask);
    o.strength = number(body, "strength").value_or(o.mask ? 0.9999 : 0.3);
    if (o.mask && (o.mask->width != o.image->width || o.mask->height != o.image->height))
      throw HttpError(400, "Validation", "the mask must be the image's size");
  }
  try {
    SDXLPipeline::check(queue.path(), o);  // sizes, steps, sampler, adapters' formats: 400 now, not a failed job later
  } catch (const Error& e) {
    throw HttpError(e.kind() == ErrorKind::Usage ? 400 : 500, "Validation", e.what());
  }
  return job;
}

void submit(ImageQueue& queue, const std::shared_ptr<ImageJob>& job, httplib::Response& res) {
  if (!queue.submit(job)) {
    res.set_header("Retry-After", "30");
    throw HttpError(429, "Overloaded", str("the image queue of '", queue.name(), "' is full (", queue.options().capacity,
                                           " jobs: --image-queue); retry later"));
  }
}

// OpenAI's images response: {created, data: [{b64_json, revised_prompt}], output_format, size}, after the
// job is done (waiting while the client is connected; a client that leaves cancels it).
void answer_when_done(ImageQueue& queue, const std::shared_ptr<ImageJob>& job, const httplib::Request& req, httplib::Response& res) {
  ClientConnection client(req);
  uint64_t seen = 0;
  while (!queue.finished(job)) {
    seen = queue.wait_change(job, seen, std::chrono::milliseconds(200));
    if (client.closed()) {
      queue.cancel(job);
      throw HttpError(499, "Cancelled", "the client closed the connection; the generation was cancelled");
    }
  }
  const json j = queue.describe(job, true);
  queue.forget(job->id);
  if (j["status"] == "failed") throw HttpError(j["error"]["status"].get<int>(), "Validation", j["error"]["message"].get<std::string>());
  if (j["status"] == "cancelled") throw HttpError(409, "Cancelled", "the generation was cancelled (DELETE /v1/jobs/" + job->id + ")");
  json data = json::array();
  for (const json& item : j["data"])
    data.push_back({{"b64_json", item["b64_json"]}, {"revised_prompt", job->options.prompt}, {"seed", item["seed"]}});
  const auto& o = job->options;
  send_json(res, {{"created", j["created"]}, {"data", std::move(data)}, {"output_format", job->output_format},
                  {"size", o.width ? str(*o.width, "x", *o.height) : "auto"}});
}

void generations(Service& service, const httplib::Request& req, httplib::Response& res) {
  const json body = parse_body(req);
  ImageQueue& queue = generator_of(service, body);
  const auto job = image_job(body, queue, std::nullopt, std::nullopt);
  submit(queue, job, res);
  answer_when_done(queue, job, req, res);
}

// multipart/form-data as OpenAI's client sends it: "image" (or "image[]") and "mask" files, the other
// fields as text.
void edits(Service& service, const httplib::Request& req, httplib::Response& res) {
  if (!req.is_multipart_form_data())
    throw HttpError(400, "Validation", "/v1/images/edits takes multipart/form-data with an 'image' file (and a 'mask')");
  json body = json::object();
  for (const auto& [name, file] : req.files)
    if (file.filename.empty()) body[name] = file.content;  // a plain field
  auto image_file = [&](const char* a, const char* b) -> std::optional<Image> {
    for (const char* key : {a, b})
      if (req.has_file(key)) {
        const auto f = req.get_file_value(key);
        if (f.filename.empty()) continue;
        try {
          return decode_image(f.content, f.filename);
        } catch (const Error& e) {
          throw HttpError(400, "Validation", e.what());
        }
      }
    return std::nullopt;
  };
  auto image = image_file("image", "image[]");
  if (!image) throw HttpError(400, "Validation", "'image' is required: the picture to edit, as a file");
  ImageQueue& queue = generator_of(service, body);
  const auto job = image_job(body, queue, std::move(image), image_file("mask", "mask[]"));
  submit(queue, job, res);
  answer_when_done(queue, job, req, res);
}

// ---- jobs -------------------------------------------------------------------------------------------------

ImageQueue* queue_of_job(Service& service, const std::string& id, std::shared_ptr<ImageJob>& job) {
  for (auto& g : service.generators())
    if ((job = g->find(id))) return g.get();
  throw HttpError(404, "NotFound", str("no job '", id, "' (finished jobs are kept until fetched, then 60 s)"));
}

void create_job(Service& service, const httplib::Request& req, httplib::Response& res) {
  const json body = parse_body(req);
  ImageQueue& queue = generator_of(service, body);
  std::optional<Image> image, mask;
  if (body.contains("image") && body["image"].is_string()) image = service.decode_image(body["image"].get<std::string>(), 0);
  if (body.contains("mask") && body["mask"].is_string()) {
    if (!image) throw HttpError(400, "Validation", "'mask' marks what to repaint in an 'image'; give the image");
    mask = service.decode_image(body["mask"].get<std::string>(), 1);
  }
  const auto job = image_job(body, queue, std::move(image), std::move(mask));
  submit(queue, job, res);
  res.set_header("Location", "/v1/jobs/" + job->id);
  send_json(res, queue.describe(job, false), 202);
}

void get_job(Service& service, const httplib::Request& req, httplib::Response& res) {
  std::shared_ptr<ImageJob> job;
  ImageQueue* queue = queue_of_job(service, req.matches[1], job);
  send_json(res, queue->describe(job, true, /*mark_fetched=*/true));
}

void delete_job(Service& service, const httplib::Request& req, httplib::Response& res) {
  std::shared_ptr<ImageJob> job;
  ImageQueue* queue = queue_of_job(service, req.matches[1], job);
  if (queue->finished(job)) {
    queue->forget(job->id);
    send_json(res, {{"id", job->id}, {"deleted", true}});
    return;
  }
  queue->cancel(job);  // a queued job is cancelled now, a running one at its next step
  json j = queue->describe(job, false);
  j["cancel_requested"] = true;
  send_json(res, j);
}

// Server-sent events: one "progress" event per change (status, step, ETA), a comment every 15 s to keep
// proxies from closing the stream, and a last event named after the end state; the images are fetched
// with GET /v1/jobs/{id}.
void job_events(Service& service, const httplib::Request& req, httplib::Response& res) {
  std::shared_ptr<ImageJob> job;
  ImageQueue* queue = queue_of_job(service, req.matches[1], job);
  auto seen = std::make_shared<uint64_t>(~uint64_t(0));
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider("text/event-stream", [queue, job, seen](size_t, httplib::DataSink& sink) {
    const uint64_t version = *seen == ~uint64_t(0) ? job->version : queue->wait_change(job, *seen, std::chrono::seconds(15));
    const bool changed = version != *seen;
    *seen = version;
    const bool end = queue->finished(job);
    std::string event;
    if (changed || end) {
      const json j = queue->describe(job, false);
      event = str("event: ", end ? j["status"].get<std::string>() : "progress", "\ndata: ", j.dump(), "\n\n");
    } else {
      event = ": waiting\n\n";
    }
    if (!sink.write(event.data(), event.size())) return false;
    if (end) sink.done();
    return true;
  });
}

}  // namespace

void add_image_routes(httplib::Server& http, const Guard& guard) {
  http.Post("/v1/images/generations", guard(Dialect::OpenAI, generations));
  http.Post("/v1/images/edits", guard(Dialect::OpenAI, edits));
  http.Post("/v1/jobs", guard(Dialect::OpenAI, create_job));
  http.Get(R"(/v1/jobs/([A-Za-z0-9-]+))", guard(Dialect::OpenAI, get_job));
  http.Delete(R"(/v1/jobs/([A-Za-z0-9-]+))", guard(Dialect::OpenAI, delete_job));
  http.Get(R"(/v1/jobs/([A-Za-z0-9-]+)/events)", guard(Dialect::OpenAI, job_events));
}

}  // namespace mmx::serve
