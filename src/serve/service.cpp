#include "serve/service.hpp"

#include <algorithm>
#include <filesystem>

#include <dirent.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mmx/error.hpp"
#include "mmx/files.hpp"
#include "mmx/hub_cache.hpp"

namespace mmx::serve {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

void send_json(httplib::Response& response, const json& body, int status) {
  response.status = status;
  response.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

namespace {
int validation_status(Dialect dialect) { return dialect == Dialect::Tei ? 422 : 400; }
}  // namespace

std::string string_field(const json& body, const char* key, Dialect dialect, const std::string& fallback) {
  if (!body.contains(key) || body[key].is_null()) return fallback;
  if (!body[key].is_string()) throw HttpError(validation_status(dialect), "Validation", str("'", key, "' must be a string"));
  return body[key].get<std::string>();
}

bool bool_field(const json& body, const char* key, Dialect dialect, bool fallback) {
  if (!body.contains(key) || body[key].is_null()) return fallback;
  if (!body[key].is_boolean()) throw HttpError(validation_status(dialect), "Validation", str("'", key, "' must be true or false"));
  return body[key].get<bool>();
}

json parse_body(const httplib::Request& request) {
  json body;
  try {
    body = json::parse(request.body);
  } catch (const json::exception& e) {
    throw HttpError(400, "Validation", str("the request body is not JSON: ", e.what()));
  }
  if (!body.is_object()) throw HttpError(422, "Validation", "the request body must be a JSON object");
  return body;
}

std::string error_body(Dialect dialect, int status, const std::string& type, const std::string& message) {
  if (dialect == Dialect::Tei) return json{{"error", message}, {"error_type", type}}.dump(-1, ' ', false, json::error_handler_t::replace);
  // OpenAI's types: invalid_request_error for what the client sent, and its own words for the rest.
  const char* kind = status == 401   ? "authentication_error"
                     : status == 404 ? "invalid_request_error"
                     : status == 429 ? "rate_limit_error"
                     : status >= 500 ? (status == 504 ? "timeout_error" : "server_error")
                                     : "invalid_request_error";
  const json code = status == 404 ? json("model_not_found") : status == 401 ? json("invalid_api_key") : json(nullptr);
  return json{{"error", {{"message", message}, {"type", kind}, {"param", nullptr}, {"code", code}}}}.dump(
      -1, ' ', false, json::error_handler_t::replace);
}

// ---- base64 -------------------------------------------------------------------------------------------

namespace {
constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
}

std::string base64_encode(const void* data, size_t size) {
  const auto* p = static_cast<const unsigned char*>(data);
  std::string out;
  out.reserve((size + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= size; i += 3) {
    const uint32_t v = uint32_t(p[i]) << 16 | uint32_t(p[i + 1]) << 8 | p[i + 2];
    for (int s : {18, 12, 6, 0}) out += kAlphabet[(v >> s) & 63];
  }
  if (i < size) {
    const uint32_t v = uint32_t(p[i]) << 16 | (i + 1 < size ? uint32_t(p[i + 1]) << 8 : 0);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < size ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string base64_decode(const std::string& text) {
  int8_t value[256];
  std::fill(std::begin(value), std::end(value), int8_t(-1));
  for (int i = 0; i < 64; ++i) value[static_cast<unsigned char>(kAlphabet[i])] = int8_t(i);
  if (text.size() % 4 != 0) throw HttpError(400, "Validation", str("base64 data of ", text.size(), " characters (not a multiple of 4)"));
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    int v[4];
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      const unsigned char c = static_cast<unsigned char>(text[i + k]);
      if (c == '=' && i + 4 == text.size() && k >= 2) { v[k] = 0; ++pad; continue; }
      if (pad || value[c] < 0) throw HttpError(400, "Validation", str("base64 data has a bad character at ", i + k));
      v[k] = value[c];
    }
    const uint32_t bits = uint32_t(v[0]) << 18 | uint32_t(v[1]) << 12 | uint32_t(v[2]) << 6 | uint32_t(v[3]);
    out += char(bits >> 16);
    if (pad < 2) out += char((bits >> 8) & 255);
    if (pad < 1) out += char(bits & 255);
  }
  return out;
}

// ---- models and inputs ------------------------------------------------------------------------------

ServedModel& Service::model(const std::string& name) {
  for (auto& g : generators_)
    if (g->name() == name && !name.empty())
      throw HttpError(400, "Validation", str("the model '", name, "' generates images (/v1/images/generations, /v1/jobs); it embeds nothing"));
  if (models_.empty()) throw HttpError(404, "Validation", "this server has no embedding model (it serves image generation only)");
  if (name.empty()) return *models_.front();
  for (auto& m : models_)
    if (m->name == name) return *m;
  std::string names;
  for (auto& m : models_) names += (names.empty() ? "" : ", ") + m->name;
  throw HttpError(404, "Validation", str("the model '", name, "' is not served here (served: ", names, ")"));
}

void Service::check_count(size_t inputs) const {
  if (inputs == 0) throw HttpError(422, "Empty", "the input is empty: give at least one text or image");
  if (int64_t(inputs) > options_.max_client_batch_size)
    throw HttpError(413, "Validation",
                    str("batch size ", inputs, " > maximum allowed batch size ", options_.max_client_batch_size,
                        " (--max-client-batch-size)"));
}

Encoding Service::encode(const ServedModel& m, const std::string& text, const Truncation& t, size_t index,
                         const std::optional<std::string>& prompt_name) const {
  const TextEmbedder* embedder = m.worker->texts();
  if (!embedder) throw HttpError(422, "Validation", str("the model '", m.name, "' embeds images, not texts (input ", index, ")"));
  if (text.empty()) throw HttpError(422, "Empty", str("input ", index, " is an empty text"));
  const Tokenizer& tokenizer = embedder->tokenizer();
  const int64_t limit = embedder->max_length();
  Encoding e;
  std::string prepared;  // a sentence-transformers folder's text as encode() sees it (its default prompt too)
  try {
    EmbedOptions options;
    options.prompt_name = prompt_name;
    prepared = embedder->prepare(text, options);
    e = tokenizer.encode(prepared);
  } catch (const Error& error) {  // non-UTF-8 text, among others
    throw HttpError(422, "Tokenizer", str("input ", index, ": ", error.what()));
  }
  const int64_t n = int64_t(e.input_ids.size());
  if (n <= limit) return e;
  if (!t.truncate)
    throw HttpError(t.too_long_status, "Validation",
                    str("input ", index, " has ", n, " tokens; the model '", m.name, "' takes at most ", limit,
                        " (ask for truncation: TEI's \"truncate\": true)"));
  if (!t.left) return tokenizer.encode(prepared, nullptr, limit);
  // Left truncation keeps the special tokens at both ends and the last limit - 2 tokens between them.
  const size_t specials = tokenizer.encode(" ").input_ids.size();
  if (specials != 2) throw HttpError(422, "Validation", "truncation_direction Left needs a tokenizer that adds one token at each end");
  auto keep_ends = [&](std::vector<int64_t>& v) {  // the first entry and the last limit - 1
    if (!v.empty()) v.erase(v.begin() + 1, v.end() - (limit - 1));
  };
  keep_ends(e.input_ids);
  keep_ends(e.token_type_ids);
  keep_ends(e.attention_mask);
  return e;
}

Image Service::decode_image(const std::string& url, size_t index) const {
  const std::string where = str("input ", index);
  if (url.rfind("data:", 0) == 0) {
    const size_t comma = url.find(',');
    const std::string media = url.substr(5, comma == std::string::npos ? 0 : comma - 5);  // "image/png;base64"
    if (comma == std::string::npos || media.size() < 7 || media.compare(media.size() - 7, 7, ";base64") != 0)
      throw HttpError(400, "Validation", where + ": a data: URL must be base64 (data:image/png;base64,...)");
    const std::string bytes = base64_decode(url.substr(comma + 1));
    try {
      return mmx::decode_image(bytes, where);
    } catch (const Error& e) {
      throw HttpError(400, "Validation", e.what());
    }
  }
  if (url.rfind("http://", 0) == 0 || url.rfind("https://", 0) == 0)
    throw HttpError(400, "Validation", where + ": the server does not fetch URLs; send the image as a data: URL (base64)");
  if (options_.allow_local_files.empty())
    throw HttpError(400, "Validation",
                    where + ": images are data: URLs (data:image/png;base64,...); reading server files needs --allow-local-files DIR");
  // A path (or file:// URL) inside the allowed folder, after symbolic links are resolved.
  namespace fs = std::filesystem;
  std::string path = url.rfind("file://", 0) == 0 ? url.substr(7) : url;
  std::error_code ec;
  const fs::path root = fs::canonical(options_.allow_local_files, ec);
  const fs::path file = fs::weakly_canonical(fs::path(options_.allow_local_files) / path, ec);
  const auto [r, f] = std::mismatch(root.begin(), root.end(), file.begin(), file.end());
  if (ec || r != root.end() || !fs::is_regular_file(file, ec))
    throw HttpError(400, "Validation", str(where, ": ", path, " is not a file inside the allowed folder"));
  try {
    return load_image(file.string());
  } catch (const Error& e) {
    throw HttpError(400, "Validation", e.what());
  }
}

// ---- the client's connection ---------------------------------------------------------------------------

namespace {

// The socket of this request's connection, found by its peer address (cpp-httplib does not hand it to
// handlers): -1 when not found. The socket stays open while its handler runs.
int connection_socket(const httplib::Request& request) {
  DIR* dir = opendir("/proc/self/fd");
  if (!dir) return -1;
  int found = -1;
  while (dirent* entry = readdir(dir)) {
    const int fd = std::atoi(entry->d_name);
    if (fd <= 2) continue;
    struct stat st {};
    if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) continue;
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) != 0) continue;
    char host[NI_MAXHOST], port[NI_MAXSERV];
    if (getnameinfo(reinterpret_cast<sockaddr*>(&peer), len, host, sizeof host, port, sizeof port,
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0)
      continue;
    if (request.remote_addr == host && request.remote_port == std::atoi(port)) {
      found = fd;
      break;
    }
  }
  closedir(dir);
  return found;
}

// True when the client closed its side: a read would return end-of-file (or the connection was reset).
bool peer_closed(int fd) {
  char c;
  const ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

}  // namespace

bool is_diffusers_pipeline(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return std::filesystem::is_regular_file(std::filesystem::path(path) / "model_index.json", ec);
  if (!parse_hub_model_id(path)) return false;
  try {
    return std::filesystem::is_regular_file(std::filesystem::path(resolve_model_path(path)) / "model_index.json", ec);
  } catch (const Error&) {
    return false;  // Model::load reports what is wrong with it
  }
}

bool ClientConnection::closed() {
  if (fd_ == -2) fd_ = connection_socket(*request_);
  return fd_ >= 0 && peer_closed(fd_);
}

void Service::wait(const std::shared_ptr<Job>& job, ServedModel& m, const httplib::Request& request) {
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(options_.request_timeout_s));
  int fd = -2;  // looked up once the job has waited a little: most finish before
  for (;;) {
    const auto until = std::min(deadline, Clock::now() + std::chrono::milliseconds(20));
    if (job->wait_until(until)) break;
    if (Clock::now() >= deadline) {
      job->abandoned = true;
      metrics_.add("mmx_dropped_requests_total", {{"model", m.name}, {"reason", "timeout"}});
      throw HttpError(504, "Backend", str("the request took longer than ", options_.request_timeout_s, " s (--request-timeout)"));
    }
    if (fd == -2) fd = connection_socket(request);
    if (fd >= 0 && peer_closed(fd)) {
      job->abandoned = true;
      metrics_.add("mmx_dropped_requests_total", {{"model", m.name}, {"reason", "client_disconnected"}});
      throw HttpError(499, "Cancelled", "the client closed the connection");
    }
  }
  if (job->error) std::rethrow_exception(job->error);
}

void Service::run_on_worker(ServedModel& m, std::function<void()> work, const httplib::Request& request) {
  auto job = std::make_shared<Job>();
  job->kind = Job::Kind::Task;
  job->task = std::move(work);
  m.worker->submit(job);
  wait(job, m, request);
}

Embedded Service::embed(ServedModel& m, const std::vector<Input>& inputs, const Truncation& truncation,
                        const httplib::Request& request, std::optional<Pooling> text_pooling,
                        std::optional<Pooling> image_pooling, const std::optional<std::string>& prompt_name) {
  check_count(inputs.size());
  if (prompt_name) {  // a name the model's folder does not have is the client's error, before any work
    const TextEmbedder* embedder = m.worker->texts();
    EmbedOptions options;
    options.prompt_name = prompt_name;
    try {
      if (!embedder) throw Error(ErrorKind::Usage, "it embeds images");
      embedder->prompt_tokens(options);
    } catch (const Error& e) {
      throw HttpError(422, "Validation", str("prompt_name '", *prompt_name, "' for the model '", m.name, "': ", e.what()));
    }
  }
  auto texts = std::make_shared<Job>(), images = std::make_shared<Job>();
  texts->kind = Job::Kind::Texts;
  images->kind = Job::Kind::Images;
  texts->pooling = text_pooling;
  texts->prompt_name = prompt_name;
  images->pooling = image_pooling;
  Embedded out;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Input& in = inputs[i];
    if (in.kind == Input::Kind::Image) {
      if (!m.worker->images())
        throw HttpError(422, "Validation", str("the model '", m.name, "' embeds texts, not images (input ", i, ")"));
      images->images.push_back(decode_image(in.image, i));
    } else if (in.kind == Input::Kind::Text) {
      texts->rows.push_back(encode(m, in.text, truncation, i, prompt_name));
    } else {
      const TextEmbedder* embedder = m.worker->texts();
      if (!embedder) throw HttpError(422, "Validation", str("the model '", m.name, "' embeds images, not token ids"));
      if (in.ids.empty()) throw HttpError(422, "Empty", str("input ", i, " is an empty list of token ids"));
      const int64_t limit = embedder->max_length();
      if (int64_t(in.ids.size()) > limit)
        throw HttpError(truncation.too_long_status, "Validation",
                        str("input ", i, " has ", in.ids.size(), " token ids; the model takes at most ", limit));
      for (int64_t id : in.ids)
        try {
          embedder->tokenizer().id_to_token(id);
        } catch (const Error&) {
          throw HttpError(422, "Validation", str("input ", i, ": token id ", id, " is not in the model's vocabulary"));
        }
      Encoding e;
      e.input_ids = in.ids;
      e.token_type_ids.assign(in.ids.size(), 0);
      e.attention_mask.assign(in.ids.size(), 1);
      texts->rows.push_back(std::move(e));
    }
  }
  for (const Encoding& e : texts->rows) out.tokens += int64_t(e.input_ids.size());
  if (!texts->rows.empty()) m.worker->submit(texts);
  if (!images->images.empty()) m.worker->submit(images);
  try {
    if (!texts->rows.empty()) wait(texts, m, request);
    if (!images->images.empty()) wait(images, m, request);
  } catch (...) {  // the client left or its time ran out: neither half is wanted any more
    texts->abandoned = true;
    images->abandoned = true;
    throw;
  }
  size_t t = 0, im = 0;
  for (const Input& in : inputs) {
    const bool image = in.kind == Input::Kind::Image;
    const Job& job = image ? *images : *texts;
    const size_t row = image ? im++ : t++;
    out.vectors.emplace_back(job.embeddings.begin() + row * size_t(job.dim), job.embeddings.begin() + (row + 1) * size_t(job.dim));
  }
  return out;
}

}  // namespace mmx::serve
