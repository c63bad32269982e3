// The cache layout of huggingface_hub (file_download.py, constants.py): <cache>/models--org--name/ with
// refs/<revision> (the commit hash a branch or tag pointed to when last fetched), snapshots/<commit>/
// (the repo's files as relative symlinks into blobs/), blobs/<etag>. Reading a snapshot folder through
// its symlinks is all a model load needs.
#include <cstdlib>
#include <filesystem>
#include <mutex>

#include "mmx/files.hpp"
#include "core/log.hpp"
#include "mmx/error.hpp"
#include "mmx/hub_cache.hpp"

namespace mmx {
namespace fs = std::filesystem;

namespace {

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : fallback;
}

std::string expand_home(const std::string& path) {  // os.path.expanduser for a leading ~
  if (path.empty() || path[0] != '~' || (path.size() > 1 && path[1] != '/')) return path;
  return env_or("HOME", "") + path.substr(1);
}

bool valid_name_part(const std::string& s) {  // the Hub's repo names: letters, digits, '-', '_', '.'
  if (s.empty() || s.size() > 96 || s.find("--") != std::string::npos || s.find("..") != std::string::npos) return false;
  if (s.front() == '-' || s.front() == '.' || s.back() == '-' || s.back() == '.') return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) return false;
  return true;
}

}  // namespace

bool is_commit_hash(const std::string& s) {  // huggingface_hub's REGEX_COMMIT_HASH: ^[0-9a-f]{40}$
  if (s.size() != 40) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

bool is_repo_relative_path(const std::string& path) {
  if (path.empty() || path.size() > 1024 || path.front() == '/' || path.back() == '/') return false;
  for (unsigned char c : path)
    if (c < 0x20 || c == 0x7f || c == '\\') return false;
  for (size_t begin = 0; begin <= path.size();) {
    const size_t end = std::min(path.find('/', begin), path.size());
    const std::string part = path.substr(begin, end - begin);
    if (part.empty() || part == "." || part == "..") return false;
    begin = end + 1;
  }
  return true;
}

void check_inside(const std::string& root, const std::string& path, const std::string& what) {
  // weakly_canonical resolves what exists (a symlinked folder planted in the cache points elsewhere)
  // and normalises the rest.
  std::error_code ec;
  const fs::path r = fs::weakly_canonical(root, ec), p = fs::weakly_canonical(path, ec);
  const fs::path rel = p.lexically_relative(r);
  if (ec || rel.empty() || *rel.begin() == "..")
    fail(what, ": '", path, "' resolves outside ", root, "; refusing to write there");
}

std::optional<HubModelId> parse_hub_model_id(const std::string& text) {
  HubModelId id;
  std::string name = text;
  if (const size_t at = text.find('@'); at != std::string::npos) {
    name = text.substr(0, at);
    id.revision = text.substr(at + 1);
    // A branch, tag or commit; never a path that climbs out of the cache's refs/ folder.
    if (!is_repo_relative_path(id.revision)) return std::nullopt;
  }
  const size_t slash = name.find('/');
  if (slash == std::string::npos) {
    if (!valid_name_part(name)) return std::nullopt;
  } else if (name.find('/', slash + 1) != std::string::npos || !valid_name_part(name.substr(0, slash)) ||
             !valid_name_part(name.substr(slash + 1))) {
    return std::nullopt;
  }
  id.repo_id = name;
  return id;
}

std::string hub_home_dir() {
  return expand_home(
      env_or("HF_HOME", join_path(env_or("XDG_CACHE_HOME", join_path(env_or("HOME", "/"), ".cache")), "huggingface")));
}

std::string hub_cache_dir() {
  return expand_home(env_or("HF_HUB_CACHE", env_or("HUGGINGFACE_HUB_CACHE", join_path(hub_home_dir(), "hub"))));
}

bool hub_offline() {
  for (const char* name : {"HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"}) {
    std::string v = env_or(name, "");
    for (char& c : v) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (v == "1" || v == "ON" || v == "YES" || v == "TRUE") return true;
  }
  return false;
}

std::string hub_repo_dir(const std::string& repo_id, const std::string& cache_dir) {
  std::string folder = "models--" + repo_id;  // REPO_ID_SEPARATOR "--" in place of '/'
  for (size_t p = folder.find('/'); p != std::string::npos; p = folder.find('/', p)) folder.replace(p, 1, "--");
  return (fs::path(cache_dir) / folder).string();
}

std::optional<std::string> find_cached_snapshot(const HubModelId& id, const std::string& cache_dir) {
  const fs::path repo = hub_repo_dir(id.repo_id, cache_dir);
  std::string commit = id.revision;
  if (!is_commit_hash(commit)) {
    const fs::path ref = repo / "refs" / id.revision;
    if (!fs::is_regular_file(ref)) return std::nullopt;
    commit = read_file(ref.string());
    while (!commit.empty() && std::isspace(static_cast<unsigned char>(commit.back()))) commit.pop_back();
    if (!is_commit_hash(commit)) fail(ref.string(), ": not a commit hash (a damaged huggingface_hub cache?)");
  }
  const fs::path snapshot = repo / "snapshots" / commit;
  if (!fs::is_directory(snapshot)) return std::nullopt;
  return snapshot.string();
}

namespace {
std::mutex g_downloader_mutex;
ModelDownloader g_downloader;  // installed by the hub component (enable_hub_downloads), or none
}  // namespace

void set_model_downloader(ModelDownloader downloader) {
  std::lock_guard<std::mutex> lock(g_downloader_mutex);
  g_downloader = std::move(downloader);
}

std::string resolve_model_path(const std::string& model, const std::string& variant) {
  if (dir_exists(model)) return model;
  const auto id = parse_hub_model_id(model);
  if (!id) fail(model, ": no such model folder");
  const std::string cache = hub_cache_dir();
  if (const auto snapshot = find_cached_snapshot(*id, cache)) {
    log_info("using ", id->repo_id, "@", id->revision, " from the Hugging Face cache: ", *snapshot);
    return *snapshot;
  }
  const std::string not_cached =
      model + ": neither a folder nor a model in the Hugging Face cache (revision " + id->revision + ", looked in " + cache;
  if (hub_offline())
    throw Error(ErrorKind::Runtime, not_cached + "; HF_HUB_OFFLINE is set, so it is not downloaded)",
                "unset HF_HUB_OFFLINE to download it once into that cache, or give a folder saved by save_pretrained");
  ModelDownloader download;
  {
    std::lock_guard<std::mutex> lock(g_downloader_mutex);
    download = g_downloader;
  }
  if (!download)
    throw Error(ErrorKind::Runtime, not_cached + ")",
                "fill the cache with `mmx download " + id->repo_id +
                    "`, or link mmx::hub and call mmx::enable_hub_downloads() to download from this program");
  log_warn("not in the Hugging Face cache yet (", cache, "): downloading it");
  try {
    return download(*id, variant);
  } catch (const Error& e) {
    std::string why = e.what();  // said once: the model is named at the front already
    if (why.rfind(id->repo_id + ": ", 0) == 0) why = why.substr(id->repo_id.size() + 2);
    throw Error(ErrorKind::Runtime, not_cached + "), and downloading it failed: " + why, e.hint());
  }
}

}  // namespace mmx
