// Downloads into huggingface_hub's cache, as hf_hub_download / snapshot_download do: the revision's file
// list from /api/models/<repo>/revision/<rev>, then per file a HEAD of /<repo>/resolve/<commit>/<path>
// (X-Repo-Commit, X-Linked-Etag or ETag, X-Linked-Size) and a GET that follows redirects into
// blobs/<etag>.incomplete (resumed with Range after a dropped connection, retried with backoff on 5xx),
// checked against the SHA-256 of LFS files, renamed into place, linked from snapshots/<commit>/<path>
// by a relative symlink; refs/<revision> records the commit. Only the files a model needs are fetched.
#include <curl/curl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "mmx/files.hpp"
#include "core/log.hpp"
#include "mmx/error.hpp"
#include "mmx/hub_download.hpp"
#include "mmx/runtime.hpp"

namespace mmx {
namespace fs = std::filesystem;

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string endpoint() {
  std::string e = env("HF_ENDPOINT").empty() ? "https://huggingface.co" : env("HF_ENDPOINT");
  while (!e.empty() && e.back() == '/') e.pop_back();
  return e;
}

std::string token() {
  if (!env("HF_TOKEN").empty()) return env("HF_TOKEN");
  std::string path = env("HF_TOKEN_PATH");
  if (path.empty()) path = join_path(hub_home_dir(), "token");
  if (!file_exists(path)) return "";
  std::string t = read_file(path);
  while (!t.empty() && std::isspace(static_cast<unsigned char>(t.back()))) t.pop_back();
  return t;
}

std::string url_escape(const std::string& s, bool keep_slash) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) out += static_cast<char>(c);
    else {
      char b[4];
      std::snprintf(b, sizeof b, "%%%02X", c);
      out += b;
    }
  }
  return out;
}

struct Response {
  long status = 0;
  std::map<std::string, std::string> headers;  // lower-case names, of the last response in a redirect chain
  std::string body;
  CURLcode code = CURLE_OK;
  std::string error;
};

struct CurlGlobal {
  CurlGlobal() { curl_global_init(CURL_GLOBAL_DEFAULT); }
};

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* headers = static_cast<std::map<std::string, std::string>*>(user);
  std::string line(data, size * n);
  if (line.rfind("HTTP/", 0) == 0) headers->clear();  // a new response (after a redirect)
  const size_t colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = line.substr(0, colon), value = line.substr(colon + 1);
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    while (!value.empty() && std::isspace(static_cast<unsigned char>(value.front()))) value.erase(0, 1);
    while (!value.empty() && std::isspace(static_cast<unsigned char>(value.back()))) value.pop_back();
    (*headers)[name] = value;
  }
  return size * n;
}

// Answers read into memory (the file list, model_index.json, error pages) are small; a server that sends
// more is not the Hub.
constexpr size_t kMaxAnswerBytes = size_t(64) << 20;

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* body = static_cast<std::string*>(user);
  if (body->size() + size * n > kMaxAnswerBytes) return 0;  // aborts the transfer (CURLE_WRITE_ERROR)
  body->append(data, size * n);
  return size * n;
}

// A download's bytes go to the .incomplete file only from a 200 (from the start: a server that ignored
// the Range) or a 206 (appended to what is there); an error page's bytes never reach the disk. More bytes
// than the server announced for the file abort the transfer.
struct FileSink {
  CURL* curl = nullptr;
  FILE* file = nullptr;
  uint64_t have = 0;         // bytes already in the file (the Range asked from there)
  uint64_t limit = 0;        // the file's size as the HEAD said, or kUnannouncedLimit where it said none
  bool decided = false, to_file = false, too_long = false;
  std::string error_body;    // the first bytes of a non-2xx answer, for the message
};

size_t on_file_body(char* data, size_t size, size_t n, void* user) {
  auto* s = static_cast<FileSink*>(user);
  const size_t bytes = size * n;
  if (!s->decided) {
    long status = 0;
    curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &status);
    s->decided = true;
    s->to_file = status == 200 || (status == 206 && s->have > 0);
    if (status == 200 && s->have > 0) {  // the whole file again: start the partial copy over
      if (::ftruncate(::fileno(s->file), 0) != 0 || std::fseek(s->file, 0, SEEK_SET) != 0) return 0;
      s->have = 0;
    }
  }
  if (!s->to_file) {
    if (s->error_body.size() < 4096) s->error_body.append(data, std::min<size_t>(bytes, 4096 - s->error_body.size()));
    return bytes;
  }
  if (s->have + bytes > s->limit) {
    s->too_long = true;
    return 0;
  }
  if (std::fwrite(data, 1, bytes, s->file) != bytes) return 0;
  s->have += bytes;
  return bytes;
}

// A file the HEAD gave no size for is a regular (non-LFS) file, which the Hub keeps under 10 MB; more
// than this is a server streaming without end, stopped before it fills the disk.
constexpr uint64_t kUnannouncedLimit = uint64_t(64) << 20;

// Seconds a transfer may go without receiving a byte before it is given up (huggingface_hub's
// HF_HUB_DOWNLOAD_TIMEOUT; 30 here by default, as large files start slowly on busy CDNs). Connecting may
// take at most 10 s of it.
long stall_seconds() {
  const std::string v = env("HF_HUB_DOWNLOAD_TIMEOUT");
  char* end = nullptr;
  const double seconds = v.empty() ? 30.0 : std::strtod(v.c_str(), &end);
  if (!v.empty() && (*end != '\0' || !(seconds >= 1) || seconds > 86400))
    usage_error("HF_HUB_DOWNLOAD_TIMEOUT='", v, "': give a number of seconds from 1 to 86400");
  return static_cast<long>(seconds);
}

// Below this rate, averaged over the stall time, a transfer is given up: a server trickling two bytes a
// second would otherwise hold a download open forever.
constexpr long kMinBytesPerSecond = 1024;

// One request. `sink` (optional) receives the body instead of Response::body.
Response request(const std::string& url, bool head, bool follow, FileSink* sink = nullptr,
                 curl_xferinfo_callback progress = nullptr, void* progress_data = nullptr) {
  static CurlGlobal global;
  Response r;
  CURL* c = curl_easy_init();
  if (!c) fail("libcurl could not start");
  curl_slist* headers = nullptr;
  const std::string t = token();
  if (!t.empty()) headers = curl_slist_append(headers, ("Authorization: Bearer " + t).c_str());
  headers = curl_slist_append(headers, "User-Agent: mmx/" MMX_VERSION);
  char error[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_NOBODY, head ? 1L : 0L);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, follow ? 1L : 0L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
  const long stall = stall_seconds();
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, std::min(10L, stall));
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, kMinBytesPerSecond);  // stalled or trickling for `stall` s: failed
  // Redirects lead to the Hub's CDN, never to file:// or another protocol that could read local files.
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, stall);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &r.headers);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  if (sink) {
    sink->curl = c;
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_file_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, sink);
    if (sink->have > 0) curl_easy_setopt(c, CURLOPT_RESUME_FROM_LARGE, static_cast<curl_off_t>(sink->have));
  } else {
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
  }
  if (progress) {
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, progress_data);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  }
  r.code = curl_easy_perform(c);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
  r.error = error[0] ? error : curl_easy_strerror(r.code);
  curl_slist_free_all(headers);
  curl_easy_cleanup(c);
  return r;
}

[[noreturn]] void http_error(const Response& r, const std::string& repo, const std::string& what) {
  if (r.status == 401 || r.status == 403)
    throw Error(ErrorKind::Runtime,
                repo + ": the Hub answered " + std::to_string(r.status) + " for " + what +
                    " (a gated or private model, or no access with this token)",
                "accept the model's terms on its Hub page, then log in: set HF_TOKEN=hf_... or run `huggingface-cli login`");
  if (r.status == 404) fail(repo, ": not found on ", endpoint(), ": ", what, " (check the name and the revision)");
  fail(repo, ": ", what, ": HTTP ", r.status);
}

// What another try can change soon: a refused or dropped connection, a server error, a rate limit. Not a
// name that does not resolve, a certificate that does not verify, or a stall (it already waited its time).
bool transient(const Response& r) {
  switch (r.code) {
    case CURLE_OK: return r.status >= 500 || r.status == 429;
    case CURLE_COULDNT_CONNECT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_RANGE_ERROR:  // a resume the server refused: the partial file is gone, the next try starts over
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM: return true;
    default: return false;
  }
}

// GET/HEAD with two more tries after 0.5 and 1 s where a failure is transient (see above).
Response with_retries(const std::function<Response()>& attempt, const std::string& what) {
  double wait = 0.5;
  for (int tries = 1;; ++tries) {
    Response r = attempt();
    if (!transient(r) || tries == 3) return r;
    log_warn(what, ": ", r.code != CURLE_OK ? r.error : "HTTP " + std::to_string(r.status), "; retrying in ", wait, " s");
    std::this_thread::sleep_for(std::chrono::duration<double>(wait));
    wait = std::min(wait * 2, 8.0);
  }
}

std::string strip_etag(std::string e) {  // W/"abc" → abc
  if (e.rfind("W/", 0) == 0) e = e.substr(2);
  if (e.size() >= 2 && e.front() == '"' && e.back() == '"') e = e.substr(1, e.size() - 2);
  return e;
}

// The hex digest of a file's bytes after `prefix`: SHA-256 for LFS files (their ETag), SHA-1 of
// "blob <size>\0" + bytes for the others (git's object id, which the Hub sends as their ETag).
std::string digest_of(const std::string& path, const EVP_MD* md, const std::string& prefix = "") {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) fail(path, ": cannot read");
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, md, nullptr);
  EVP_DigestUpdate(ctx, prefix.data(), prefix.size());
  std::vector<char> buf(1 << 20);
  for (size_t n; (n = std::fread(buf.data(), 1, buf.size(), f)) > 0;) EVP_DigestUpdate(ctx, buf.data(), n);
  std::fclose(f);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  EVP_DigestFinal_ex(ctx, digest, &len);
  EVP_MD_CTX_free(ctx);
  std::string hex;
  char b[3];
  for (unsigned i = 0; i < len; ++i) {
    std::snprintf(b, sizeof b, "%02x", digest[i]);
    hex += b;
  }
  return hex;
}

bool is_hex(const std::string& s, size_t length) {
  return s.size() == length && std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// A name from the network, quoted for a message: control characters escaped, long ones cut.
std::string shown(const std::string& name) {
  const std::string quoted = nlohmann::json(name).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return quoted.size() > 120 ? quoted.substr(0, 117) + "...\"" : quoted;
}

// Removes a download's .incomplete file unless the transfer reached its blob: a failed run leaves nothing.
struct PartialFile {
  fs::path path;
  ~PartialFile() {
    std::error_code ec;
    if (!path.empty()) fs::remove(path, ec);
  }
};

struct Progress {
  std::string name;
  uint64_t already = 0, total = 0;
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now(), last = start;
};

int on_progress(void* data, curl_off_t, curl_off_t now, curl_off_t, curl_off_t) {
  auto* p = static_cast<Progress*>(data);
  const auto t = std::chrono::steady_clock::now();
  if (log_level() < LogLevel::Warn || t - p->last < std::chrono::milliseconds(500)) return 0;
  p->last = t;
  const double seconds = std::chrono::duration<double>(t - p->start).count();
  const double got = static_cast<double>(p->already + static_cast<uint64_t>(now));
  const double rate = seconds > 0 ? static_cast<double>(now) / seconds : 0;
  const double eta = rate > 0 && p->total > got ? (static_cast<double>(p->total) - got) / rate : 0;
  std::fprintf(stderr, "%s%s  %.1f/%.1f MB  %.1f MB/s  ETA %.0f s%s", ::isatty(STDERR_FILENO) ? "\r" : "",
               p->name.c_str(), got / 1e6, static_cast<double>(p->total) / 1e6, rate / 1e6, eta,
               ::isatty(STDERR_FILENO) ? "" : "\n");
  return 0;
}

// The files of one folder of the repo ("" = the root) that a model load reads: configs and tokenizer
// files, and the weights in one format: safetensors (the variant's when asked and present), else .bin.
std::vector<std::string> wanted_in_folder(const std::vector<std::string>& files, const std::string& folder,
                                          const std::string& variant) {
  std::vector<std::string> mine, safetensors, bins, out;
  for (const auto& f : files) {
    const std::string dir = f.find('/') == std::string::npos ? "" : f.substr(0, f.rfind('/'));
    if (dir == folder) mine.push_back(f);
  }
  auto ends = [](const std::string& s, const std::string& x) {
    return s.size() >= x.size() && s.compare(s.size() - x.size(), x.size(), x) == 0;
  };
  for (const auto& f : mine) {
    if (ends(f, ".safetensors") || ends(f, ".safetensors.index.json")) safetensors.push_back(f);
    else if (ends(f, ".bin") || ends(f, ".bin.index.json")) bins.push_back(f);
    else if (ends(f, ".json") || ends(f, ".txt") || ends(f, ".model")) out.push_back(f);
  }
  auto pick = [&](const std::vector<std::string>& weights) {
    std::vector<std::string> with_variant, plain;
    for (const auto& w : weights) (w.find(".fp16.") != std::string::npos ? with_variant : plain).push_back(w);
    return !variant.empty() && !with_variant.empty() ? with_variant : !plain.empty() ? plain : with_variant;
  };
  const auto weights = pick(!safetensors.empty() ? safetensors : bins);
  out.insert(out.end(), weights.begin(), weights.end());
  return out;
}

// A JSON file of the repository that names the folders to fetch (model_index.json, modules.json),
// read into memory at the commit.
nlohmann::json index_file(const std::string& base, const HubModelId& id, const std::string& commit, const std::string& name) {
  const Response index =
      with_retries([&] { return request(base + "/" + id.repo_id + "/resolve/" + commit + "/" + name, false, true); }, name);
  if (index.code != CURLE_OK) fail(id.repo_id, ": ", name, ": ", index.error);
  if (index.status != 200) http_error(index, id.repo_id, name);
  try {
    return nlohmann::json::parse(index.body);
  } catch (const std::exception& e) {
    fail(id.repo_id, ": ", name, " is not JSON: ", e.what());
  }
}

}  // namespace

std::string download_model(const HubModelId& id, const std::string& variant) {
  if (hub_offline()) fail(id.repo_id, ": HF_HUB_OFFLINE is set, so nothing is downloaded");
  // A caller of this library may build the id itself: the same checks as a parsed one.
  if (!parse_hub_model_id(id.repo_id + "@" + id.revision))
    usage_error(shown(id.repo_id), "@", shown(id.revision), " is not a Hub model id and revision");
  const std::string base = endpoint();
  const std::string what = "revision " + id.revision;
  const Response info = with_retries(
      [&] {
        return request(base + "/api/models/" + url_escape(id.repo_id, true) + "/revision/" + url_escape(id.revision, false),
                       false, true);
      },
      id.repo_id);
  if (info.code != CURLE_OK && info.code != CURLE_WRITE_ERROR)
    throw Error(ErrorKind::Runtime, str("cannot reach ", base, ": ", info.error),
                "without network, give a local folder written by save_pretrained, or set HF_HUB_OFFLINE=1 to use only "
                "what the Hugging Face cache holds; behind a mirror, set HF_ENDPOINT");
  if (info.code == CURLE_WRITE_ERROR) fail(id.repo_id, ": the Hub's file list is larger than ", kMaxAnswerBytes >> 20, " MiB");
  if (info.status != 200) http_error(info, id.repo_id, what);
  nlohmann::json listing;
  try {
    listing = nlohmann::json::parse(info.body);
  } catch (const std::exception& e) {
    fail(id.repo_id, ": the Hub's file list is not JSON: ", e.what());
  }
  if (!listing.is_object()) fail(id.repo_id, ": the Hub's file list is not a JSON object");
  // Everything below names folders and files in the cache: what the server says is checked first.
  const std::string commit = listing.contains("sha") && listing["sha"].is_string() ? listing["sha"].get<std::string>() : "";
  if (!is_commit_hash(commit))
    fail(id.repo_id, ": the Hub's answer for ", what, " names commit ", shown(commit), ", not a 40-hex commit hash");
  std::vector<std::string> files;
  if (listing.contains("siblings") && listing["siblings"].is_array())
    for (const auto& s : listing["siblings"])
      if (s.is_object() && s.contains("rfilename") && s["rfilename"].is_string()) {
        const std::string name = s["rfilename"].get<std::string>();
        if (!is_repo_relative_path(name))
          fail(id.repo_id, ": the Hub's file list holds ", shown(name), ", not a path inside a repository; nothing was downloaded");
        files.push_back(name);
      }

  std::vector<std::string> wanted;
  if (std::find(files.begin(), files.end(), "model_index.json") != files.end()) {
    // A diffusers pipeline: model_index.json, then each component it names (not root-level single-file checkpoints).
    wanted.push_back("model_index.json");
    const nlohmann::json components = index_file(base, id, commit, "model_index.json");
    if (!components.is_object()) fail(id.repo_id, ": model_index.json is not an object");
    for (auto it = components.begin(); it != components.end(); ++it)
      if (const std::string& name = it.key(); it->is_array() && it->size() == 2 && (*it)[0].is_string()) {
        // A component is one folder of the repository, named like a Python attribute.
        if (!is_repo_relative_path(name) || name.find('/') != std::string::npos)
          fail(id.repo_id, ": model_index.json names component ", shown(name), ", not a folder of the repository");
        const auto part = wanted_in_folder(files, name, variant);
        wanted.insert(wanted.end(), part.begin(), part.end());
      }
  } else {
    wanted = wanted_in_folder(files, "", variant);
    if (std::find(files.begin(), files.end(), "modules.json") != files.end()) {
      // A sentence-transformers folder: the root, and each module's folder that modules.json names
      // (1_Pooling, 2_Dense, or 0_Transformer in older saves); onnx/ and openvino/ copies are left alone.
      const nlohmann::json modules = index_file(base, id, commit, "modules.json");
      if (!modules.is_array()) fail(id.repo_id, ": modules.json is not a list");
      for (const auto& m : modules) {
        if (!m.is_object() || !m.contains("path") || !m["path"].is_string()) continue;
        const std::string folder = m["path"].get<std::string>();
        if (folder.empty()) continue;
        if (!is_repo_relative_path(folder)) fail(id.repo_id, ": modules.json names module folder ", shown(folder), ", not a folder of the repository");
        const auto part = wanted_in_folder(files, folder, variant);
        wanted.insert(wanted.end(), part.begin(), part.end());
      }
    }
  }
  if (wanted.empty()) fail(id.repo_id, ": no configuration or weights files at ", what);

  const fs::path repo = hub_repo_dir(id.repo_id, hub_cache_dir());
  const fs::path snapshot = repo / "snapshots" / commit;
  fs::create_directories(repo / "blobs");
  fs::create_directories(snapshot);
  check_inside(repo.string(), snapshot.string(), id.repo_id);
  for (const auto& path : wanted) {
    const std::string url = base + "/" + id.repo_id + "/resolve/" + commit + "/" + url_escape(path, true);
    // Metadata from the first response (an LFS file answers with a redirect to its CDN copy, carrying
    // X-Linked-Etag); relative redirects (a renamed repo) are followed, as huggingface_hub does.
    std::string head_url = url;
    Response head;
    for (int hops = 0;; ++hops) {
      head = with_retries([&] { return request(head_url, true, false); }, path);
      const auto loc = head.headers.find("location");
      if (head.status < 300 || head.status >= 400 || loc == head.headers.end() || loc->second.empty() ||
          loc->second[0] != '/' || head.headers.count("x-linked-etag") || hops == 5)
        break;
      head_url = base + loc->second;
    }
    if (head.code != CURLE_OK) fail(id.repo_id, ": ", path, ": ", head.error);
    if (head.status >= 400) http_error(head, id.repo_id, path);
    const bool lfs = head.headers.count("x-linked-etag") > 0;
    const std::string etag = strip_etag(lfs ? head.headers.at("x-linked-etag") : head.headers.count("etag") ? head.headers.at("etag") : "");
    // The ETag names the blob file: a SHA-256 for LFS files, else an id of letters, digits, '-' and '_'.
    const bool usable = lfs ? is_hex(etag, 64)
                            : !etag.empty() && etag.size() <= 128 && std::all_of(etag.begin(), etag.end(), [](char c) {
                                return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
                              });
    if (!usable) fail(id.repo_id, ": ", path, ": the Hub sent no usable ETag (", shown(etag), ")");
    const std::string size_text = lfs ? (head.headers.count("x-linked-size") ? head.headers.at("x-linked-size") : "")
                                      : head.headers.count("content-length") ? head.headers.at("content-length") : "";
    char* size_end = nullptr;
    const uint64_t size = size_text.empty() ? 0 : std::strtoull(size_text.c_str(), &size_end, 10);
    if (!size_text.empty() && (*size_end != '\0' || !std::isdigit(static_cast<unsigned char>(size_text[0]))))
      fail(id.repo_id, ": ", path, ": the Hub announced a size of ", shown(size_text));
    if (lfs && size_text.empty()) fail(id.repo_id, ": ", path, ": the Hub announced no size for this large file");
    const fs::path blob = repo / "blobs" / etag;
    check_inside(repo.string(), blob.string(), id.repo_id);
    if (!fs::exists(blob)) {
      PartialFile partial{blob.string() + ".incomplete"};  // gone unless renamed into place below
      check_inside(repo.string(), partial.path.string(), id.repo_id);  // not a symlink planted in the cache
      Progress progress;
      progress.name = path;
      progress.total = size;
      FileSink sink;
      const Response got = with_retries(
          [&] {
            sink = FileSink{};
            sink.have = fs::exists(partial.path) ? fs::file_size(partial.path) : 0;
            sink.limit = size_text.empty() ? kUnannouncedLimit : size;
            progress.already = sink.have;
            FILE* f = std::fopen(partial.path.c_str(), sink.have ? "ab" : "wb");
            if (!f) fail(partial.path.string(), ": cannot write");
            sink.file = f;
            Response r = request(url, false, true, &sink, on_progress, &progress);
            const bool flushed = std::fclose(f) == 0;
            if (!sink.decided) sink.to_file = r.status == 200 || (r.status == 206 && sink.have > 0);  // no body: an empty file
            if (!sink.to_file) r.body = sink.error_body;
            if (r.code == CURLE_OK && !flushed) r.code = CURLE_WRITE_ERROR, r.error = "cannot write the downloaded bytes";
            if (sink.have > 0 && (r.code == CURLE_RANGE_ERROR || r.status == 416)) {
              // The server cannot resume this file: drop the partial copy and let the retry start over.
              fs::remove(partial.path);
              r.code = CURLE_RANGE_ERROR;
            }
            return r;
          },
          path);
      if (sink.too_long && size_text.empty())
        fail(id.repo_id, ": ", path, ": the server sent more than ", kUnannouncedLimit >> 20,
             " MiB for a file whose size it did not announce (the Hub keeps files without LFS under 10 MB)");
      if (sink.too_long) fail(id.repo_id, ": ", path, ": the server sent more than the ", size, " bytes it announced");
      if (got.status >= 400) http_error(got, id.repo_id, path);
      if (got.code != CURLE_OK) fail(id.repo_id, ": ", path, ": download failed: ", got.error);
      if (!sink.to_file) fail(id.repo_id, ": ", path, ": the server answered HTTP ", got.status, " instead of the file");
      const uint64_t got_bytes = fs::exists(partial.path) ? fs::file_size(partial.path) : 0;
      if (!size_text.empty() && got_bytes != size)
        fail(id.repo_id, ": ", path, ": got ", got_bytes, " bytes, expected ", size);
      // The bytes against the id the Hub gave them: SHA-256 for LFS files, the git blob id for the others.
      std::string digest, kind;
      if (lfs) {
        digest = digest_of(partial.path.string(), EVP_sha256()), kind = "SHA-256";
      } else if (is_hex(etag, 40)) {
        digest = digest_of(partial.path.string(), EVP_sha1(), "blob " + std::to_string(got_bytes) + std::string(1, '\0'));
        kind = "git blob SHA-1";
      }
      if (!kind.empty() && digest != etag)
        fail(id.repo_id, ": ", path, ": checksum mismatch (", kind, " ", digest, ", the Hub says ", etag,
             "); nothing was kept, run the command again");
      fs::rename(partial.path, blob);
      partial.path.clear();
      if (log_level() >= LogLevel::Warn) std::fprintf(stderr, "downloaded %s (%.1f MB)\n", path.c_str(), got_bytes / 1e6);
    }
    // The link's folder, before and after it is made (a folder planted as a symlink would lead out);
    // the link itself is a plain name there, replaced whatever it was.
    const fs::path link = snapshot / path;
    check_inside(snapshot.string(), link.parent_path().string(), id.repo_id);
    fs::create_directories(link.parent_path());
    check_inside(snapshot.string(), link.parent_path().string(), id.repo_id);
    std::error_code ec;
    fs::remove(link, ec);
    fs::create_symlink(fs::relative(blob, link.parent_path()), link);
  }
  if (id.revision != commit) {
    const fs::path ref = repo / "refs" / id.revision;
    check_inside(repo.string(), ref.string(), id.repo_id);
    fs::create_directories(ref.parent_path());
    write_file_atomically(ref.string(), commit);
  }
  return snapshot.string();
}

void enable_hub_downloads() { set_model_downloader(download_model); }

}  // namespace mmx
