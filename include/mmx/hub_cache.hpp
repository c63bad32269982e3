// Hugging Face Hub model ids and the local cache huggingface_hub keeps (~/.cache/huggingface/hub), so
// `--model bert-base-uncased` finds the copy the Python lab already downloaded, offline
// (src/hub/hub_cache.cpp; no network code: downloads are the optional hub component, mmx/hub_download.hpp).
#pragma once
#include <functional>
#include <optional>
#include <string>

namespace mmx {

struct HubModelId {
  std::string repo_id;            // "bert-base-uncased", "openai/clip-vit-base-patch32"
  std::string revision = "main";  // a branch, a tag or a commit hash (after '@')
};

// "name", "org/name", optionally "@revision". nullopt when the text cannot be a Hub id (an absolute or
// ./relative path, more than one '/', characters the Hub does not allow in names).
std::optional<HubModelId> parse_hub_model_id(const std::string& text);

// Names that reach the cache's folders from outside (a commit hash from the Hub's API, file names from
// its listing, diffusers component names, a revision) are checked before they touch the filesystem:
bool is_commit_hash(const std::string& text);  // 40 lowercase hex digits, as the Hub's commit ids
// A path inside a repository: '/'-separated non-empty parts, none "." or "..", no leading '/', no
// backslash, NUL or control character, at most 1024 bytes.
bool is_repo_relative_path(const std::string& path);
// `path`, resolved through the symlinks already on disk, stays inside `root`; an error naming `what` otherwise.
void check_inside(const std::string& root, const std::string& path, const std::string& what);

// HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface (where the login token lives).
std::string hub_home_dir();

// huggingface_hub's cache folder: HF_HUB_CACHE, else HUGGINGFACE_HUB_CACHE, else HF_HOME/hub, else
// $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub.
std::string hub_cache_dir();

// HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) set to 1, ON, YES or TRUE: never touch the network.
bool hub_offline();

// A model's folder in the cache: <cache_dir>/models--org--name.
std::string hub_repo_dir(const std::string& repo_id, const std::string& cache_dir);

// The snapshot folder of a cached model (models--org--name/snapshots/<commit>/): the revision is a
// commit hash present there, or a name whose refs/<revision> file holds one. nullopt when not cached.
std::optional<std::string> find_cached_snapshot(const HubModelId& id, const std::string& cache_dir);

// What every loader does with a model argument: an existing folder is used as it is; otherwise a Hub id is
// looked up in the cache and, when a downloader is installed and HF_HUB_OFFLINE is not set, downloaded
// into it once. Anything else is an error that says where mmx looked and what to do.
std::string resolve_model_path(const std::string& model, const std::string& variant = "");

// Fetches a model missing from the cache into it and returns its snapshot folder (download_model of the
// hub component). None is installed by default: a program without network code only reads the cache.
using ModelDownloader = std::function<std::string(const HubModelId& id, const std::string& variant)>;
void set_model_downloader(ModelDownloader downloader);

}  // namespace mmx
