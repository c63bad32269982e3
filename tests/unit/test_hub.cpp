// Hub model ids and huggingface_hub's cache: ids parsed as the Hub allows them, the cache folder found from
// the same environment variables, snapshots resolved through refs/, and a model run from a cache laid out
// the way huggingface_hub lays it out (blobs, relative symlinks, refs) with the same outputs as its folder.
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <set>

#include "cli/run_mmx.hpp"
#include "unit/hub_server.hpp"
#include "mmx/embed.hpp"
#include "mmx/error.hpp"
#include "mmx/files.hpp"
#include "mmx/hub_download.hpp"
#include "mmx/safetensors.hpp"
#include "mmx/text_to_image.hpp"
#include "test_util.hpp"

using namespace mmx;
using mmx::test::EnvVar;
using mmx::test::HubServer;
using mmx::test::sha256_hex;
namespace fs = std::filesystem;

namespace {

const std::string kCommit = "0123456789abcdef0123456789abcdef01234567";
const std::string kOldCommit = "fedcba9876543210fedcba9876543210fedcba98";

// models--org--bert-tiny as huggingface_hub writes it: each file once in blobs/ (named by its ETag), the
// snapshot's entries relative symlinks to them, refs/main → the commit; a tag at an older snapshot that
// lacks the weights; and .no_exist/ markers for files the Hub said are absent.
std::string make_cache(const test::TempDir& dir) {
  const fs::path repo = dir.path / "hub" / "models--org--bert-tiny";
  fs::create_directories(repo / "blobs");
  fs::create_directories(repo / "refs");
  fs::create_directories(repo / "snapshots" / kCommit);
  fs::create_directories(repo / "snapshots" / kOldCommit);
  fs::create_directories(repo / ".no_exist" / kCommit);
  int n = 0;
  for (const auto& entry : fs::directory_iterator(test::data("models/bert-tiny"))) {
    const std::string name = entry.path().filename().string();
    char etag[65];
    std::snprintf(etag, sizeof etag, "%064x", 0xabc0 + n++);
    fs::copy_file(entry.path(), repo / "blobs" / etag);
    fs::create_symlink(fs::path("../../blobs") / etag, repo / "snapshots" / kCommit / name);
    if (name != "model.safetensors") fs::create_symlink(fs::path("../../blobs") / etag, repo / "snapshots" / kOldCommit / name);
  }
  write_file_atomically((repo / "refs" / "main").string(), kCommit);
  write_file_atomically((repo / "refs" / "v0").string(), kOldCommit);
  write_file_atomically((repo / ".no_exist" / kCommit / "tokenizer.json").string(), "");
  return (dir.path / "hub").string();
}

}  // namespace

TEST(Hub, ModelIdsParseAsTheHubAllowsThem) {
  auto id = parse_hub_model_id("bert-base-uncased");
  ASSERT_TRUE(id);
  EXPECT_EQ(id->repo_id, "bert-base-uncased");
  EXPECT_EQ(id->revision, "main");
  id = parse_hub_model_id("openai/clip-vit-base-patch32@v1.0");
  ASSERT_TRUE(id);
  EXPECT_EQ(id->repo_id, "openai/clip-vit-base-patch32");
  EXPECT_EQ(id->revision, "v1.0");
  EXPECT_TRUE(parse_hub_model_id("stabilityai/stable-diffusion-xl-base-1.0@refs/pr/1"));
  for (const char* bad : {"/abs/path", "./rel", "a/b/c", "a//b", "org/", "@main", "x@", "a--b/c", "a b", "x@../../etc",
                          "x@/etc", ".hidden", "-x"})
    EXPECT_FALSE(parse_hub_model_id(bad)) << bad;
}

TEST(Hub, CacheFolderAndOfflineModeFollowHuggingfaceHubsVariables) {
  EnvVar home("HOME", "/home/u"), xdg("XDG_CACHE_HOME", std::nullopt), hf_home("HF_HOME", std::nullopt),
      legacy("HUGGINGFACE_HUB_CACHE", std::nullopt), cache("HF_HUB_CACHE", std::nullopt);
  EXPECT_EQ(hub_cache_dir(), "/home/u/.cache/huggingface/hub");
  {
    EnvVar x("XDG_CACHE_HOME", "/xdg");
    EXPECT_EQ(hub_cache_dir(), "/xdg/huggingface/hub");
    EnvVar h("HF_HOME", "~/hf");
    EXPECT_EQ(hub_cache_dir(), "/home/u/hf/hub");
    EnvVar l("HUGGINGFACE_HUB_CACHE", "/legacy");
    EXPECT_EQ(hub_cache_dir(), "/legacy");
    EnvVar c("HF_HUB_CACHE", "/new");
    EXPECT_EQ(hub_cache_dir(), "/new");
  }
  EnvVar offline("HF_HUB_OFFLINE", std::nullopt), transformers("TRANSFORMERS_OFFLINE", std::nullopt);
  EXPECT_FALSE(hub_offline());
  for (const char* on : {"1", "true", "YES", "On"}) {
    EnvVar o("HF_HUB_OFFLINE", on);
    EXPECT_TRUE(hub_offline()) << on;
  }
  for (const char* off : {"0", "no", "", "2"}) {
    EnvVar o("HF_HUB_OFFLINE", off);
    EXPECT_FALSE(hub_offline()) << off;
  }
  EnvVar t("TRANSFORMERS_OFFLINE", "1");
  EXPECT_TRUE(hub_offline());
}

TEST(Hub, SnapshotsResolveThroughRefsOrCommits) {
  test::TempDir dir;
  const std::string cache = make_cache(dir);
  const std::string snapshots = cache + "/models--org--bert-tiny/snapshots/";
  EXPECT_EQ(find_cached_snapshot(*parse_hub_model_id("org/bert-tiny"), cache), snapshots + kCommit);
  EXPECT_EQ(find_cached_snapshot(*parse_hub_model_id("org/bert-tiny@v0"), cache), snapshots + kOldCommit);
  EXPECT_EQ(find_cached_snapshot(*parse_hub_model_id("org/bert-tiny@" + kOldCommit), cache), snapshots + kOldCommit);
  EXPECT_FALSE(find_cached_snapshot(*parse_hub_model_id("org/bert-tiny@dev"), cache));
  EXPECT_FALSE(find_cached_snapshot(*parse_hub_model_id("org/other"), cache));
  write_file_atomically(cache + "/models--org--bert-tiny/refs/broken", "not a hash");
  EXPECT_THROW(find_cached_snapshot(*parse_hub_model_id("org/bert-tiny@broken"), cache), Error);
}

TEST(Hub, AModelRunsFromTheCacheWithTheSameOutputsAsFromItsFolder) {
  test::TempDir dir;
  EnvVar cache("HF_HUB_CACHE", make_cache(dir)), offline("HF_HUB_OFFLINE", "1");
  EmbedOptions options;
  const EmbedResult want = TextEmbedder::load(test::data("models/bert-tiny"), test::placement())->embed({"hello world"}, options);
  const EmbedResult got = TextEmbedder::load("org/bert-tiny", test::placement())->embed({"hello world"}, options);
  test::expect_close("embedding from the cache", got.embeddings, want.embeddings, 0.0);
  // The tagged snapshot has no weights: the error names the snapshot folder it looked in.
  try {
    TextEmbedder::load("org/bert-tiny@v0", test::placement());
    FAIL() << "loaded a snapshot without weights";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(kOldCommit), std::string::npos) << e.what();
  }
  try {
    TextEmbedder::load("org/missing", test::placement());
    FAIL() << "loaded a model that is not cached";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("neither a folder nor a model in the Hugging Face cache"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find(dir.path.string()), std::string::npos) << e.what();
  }
  // The command line: the same embedding, offline.
  const test::Result a = test::run({"embed", "--model", "org/bert-tiny", "--text", "hello world", "--output", dir.file("a.json")});
  ASSERT_EQ(a.code, 0) << a.err;
  const test::Result b = test::run({"embed", "--model", test::data("models/bert-tiny"), "--text", "hello world", "--output",
                                    dir.file("b.json")});
  ASSERT_EQ(b.code, 0) << b.err;
  auto strip_model = [](std::string json) {  // the outputs name their model; everything else must agree
    const size_t p = json.find("\"model\"");
    if (p != std::string::npos) json.erase(p, json.find('\n', p) - p);
    return json;
  };
  EXPECT_EQ(strip_model(read_file(dir.file("a.json"))), strip_model(read_file(dir.file("b.json"))));
  const test::Result c = test::run({"embed", "--model", "org/missing", "--text", "x", "--output", dir.file("c.json")});
  EXPECT_EQ(c.code, 1);
  EXPECT_NE(c.err.find("HF_HUB_OFFLINE is set"), std::string::npos) << c.err;
  EXPECT_FALSE(fs::exists(dir.file("c.json")));
}

namespace {
// Every file under a folder (links followed) as a repository's files at kCommit, by relative path.
HubServer::Repo repo_of_folder(const fs::path& root) {
  HubServer::Repo repo;
  repo.commit = kCommit;
  for (const auto& e : fs::recursive_directory_iterator(root))
    if (!fs::is_directory(e.path())) repo.files[e.path().lexically_relative(root).string()] = read_file(e.path().string());
  return repo;
}

HubServer::Repo bert_tiny_repo() {
  HubServer::Repo repo;
  repo.commit = kCommit;
  for (const auto& entry : fs::directory_iterator(test::data("models/bert-tiny")))
    repo.files[entry.path().filename().string()] = read_file(entry.path().string());
  repo.files["tf_model.h5"] = "not needed by mmx";          // other formats are not fetched
  repo.files["pytorch_model.bin"] = "a pickle, not needed";  // safetensors are preferred
  return repo;
}
}  // namespace

TEST(HubDownload, DownloadsIntoTheCacheAsHuggingfaceHubDoesAndRunsOfflineAfter) {
  HubServer server;
  server.add("org/bert-tiny", bert_tiny_repo());
  server.drop_once("model.safetensors");  // the first transfer of the weights breaks off halfway
  test::TempDir dir;
  EnvVar endpoint("HF_ENDPOINT", server.endpoint()), cache("HF_HUB_CACHE", dir.file("hub")),
      offline("HF_HUB_OFFLINE", std::nullopt), token("HF_TOKEN", std::nullopt), home("HF_HOME", dir.file("home"));
  const std::string snapshot = download_model(*parse_hub_model_id("org/bert-tiny"));
  EXPECT_EQ(snapshot, dir.file("hub") + "/models--org--bert-tiny/snapshots/" + kCommit);
  EXPECT_GT(server.range_requests(), 0);  // resumed, not restarted
  std::set<std::string> got;
  for (const auto& e : fs::directory_iterator(snapshot)) {
    got.insert(e.path().filename().string());
    ASSERT_TRUE(fs::is_symlink(e.path())) << e.path();
    const fs::path target = fs::read_symlink(e.path());
    EXPECT_TRUE(target.is_relative()) << target;
    EXPECT_EQ(target.parent_path(), fs::path("../../blobs")) << target;
    EXPECT_EQ(read_file(e.path().string()), read_file(test::data("models/bert-tiny/" + e.path().filename().string())));
  }
  EXPECT_EQ(got, (std::set<std::string>{"config.json", "model.safetensors", "special_tokens_map.json",
                                        "tokenizer_config.json", "vocab.txt"}));
  // LFS blobs are named by their SHA-256, as huggingface_hub names them.
  const std::string weights_sha = sha256_hex(read_file(test::data("models/bert-tiny/model.safetensors")));
  EXPECT_TRUE(fs::exists(dir.file("hub") + "/models--org--bert-tiny/blobs/" + weights_sha));
  EXPECT_EQ(read_file(dir.file("hub") + "/models--org--bert-tiny/refs/main"), kCommit);
  for (const auto& e : fs::directory_iterator(dir.file("hub") + "/models--org--bert-tiny/blobs"))
    EXPECT_EQ(e.path().extension(), "") << "left behind: " << e.path();

  // From now on the cache serves it, with the network off.
  const int before = server.requests();
  EnvVar off("HF_HUB_OFFLINE", "1");
  EmbedOptions options;
  const EmbedResult want = TextEmbedder::load(test::data("models/bert-tiny"), test::placement())->embed({"hi"}, options);
  test::expect_close("embedding after download", TextEmbedder::load("org/bert-tiny", test::placement())->embed({"hi"}, options).embeddings,
                     want.embeddings, 0.0);
  EXPECT_EQ(server.requests(), before);
}

// A sentence-transformers repository: the folders modules.json names come too (here the older layout,
// 0_Transformer/ and 2_Dense/ with its weights), the ONNX copy does not; it runs offline as its folder does.
TEST(HubDownload, SentenceTransformersRepositoriesBringTheirModules) {
  HubServer server;
  const fs::path root = test::data("models/st-bert-tiny-dense");
  HubServer::Repo repo = repo_of_folder(root);
  repo.files["onnx/model.onnx"] = "an ONNX export, not needed";
  server.add("org/st-bert-tiny-dense", repo);
  test::TempDir dir;
  EnvVar endpoint("HF_ENDPOINT", server.endpoint()), cache("HF_HUB_CACHE", dir.file("hub")),
      offline("HF_HUB_OFFLINE", std::nullopt), token("HF_TOKEN", std::nullopt), home("HF_HOME", dir.file("home"));
  const std::string snapshot = download_model(*parse_hub_model_id("org/st-bert-tiny-dense"));
  for (const char* f : {"modules.json", "config_sentence_transformers.json", "0_Transformer/config.json",
                        "0_Transformer/model.safetensors", "0_Transformer/vocab.txt", "0_Transformer/sentence_bert_config.json",
                        "1_Pooling/config.json", "2_Dense/config.json", "2_Dense/model.safetensors"})
    EXPECT_TRUE(fs::exists(snapshot + "/" + f)) << f;
  EXPECT_FALSE(fs::exists(snapshot + "/onnx"));
  EnvVar off("HF_HUB_OFFLINE", "1");
  test::expect_close("sentence-transformers embedding after download",
                     TextEmbedder::load("org/st-bert-tiny-dense", test::placement())->embed({"hi"}, {}).embeddings,
                     TextEmbedder::load(root.string(), test::placement())->embed({"hi"}, {}).embeddings, 0.0);
}

// A transfer dropped halfway from a server that cannot resume: the partial file is dropped and the
// download starts over, instead of appending the whole file to half of it.
TEST(HubDownload, AServerThatIgnoresRangesGetsAFreshTransfer) {
  HubServer server;
  server.add("org/bert-tiny", bert_tiny_repo());
  server.drop_once("model.safetensors");
  server.ignore_ranges();
  test::TempDir dir;
  EnvVar endpoint("HF_ENDPOINT", server.endpoint()), cache("HF_HUB_CACHE", dir.file("hub")),
      offline("HF_HUB_OFFLINE", std::nullopt), token("HF_TOKEN", std::nullopt);
  const std::string snapshot = download_model(*parse_hub_model_id("org/bert-tiny"));
  EXPECT_EQ(read_file(snapshot + "/model.safetensors"), read_file(test::data("models/bert-tiny/model.safetensors")));
}

TEST(HubDownload, GatedMissingAndCorruptedAreClearErrors) {
  HubServer server;
  HubServer::Repo gated = bert_tiny_repo();
  gated.token = "hf_secret";
  server.add("org/gated", gated);
  server.add("org/bert-tiny", bert_tiny_repo());
  test::TempDir dir;
  EnvVar endpoint("HF_ENDPOINT", server.endpoint()), cache("HF_HUB_CACHE", dir.file("hub")),
      offline("HF_HUB_OFFLINE", std::nullopt), token("HF_TOKEN", std::nullopt), home("HF_HOME", dir.file("home"));
  auto message = [](const std::string& model) {
    try {
      download_model(*parse_hub_model_id(model));
    } catch (const Error& e) {
      return std::string(e.what()) + " | " + e.hint();
    }
    return std::string("no error");
  };
  const std::string gated_message = message("org/gated");
  EXPECT_NE(gated_message.find("answered 401"), std::string::npos) << gated_message;
  EXPECT_NE(gated_message.find("HF_TOKEN"), std::string::npos) << gated_message;
  {
    EnvVar t("HF_TOKEN", "hf_secret");
    EXPECT_EQ(message("org/gated"), "no error");
  }
  {  // the token file huggingface-cli login writes, in HF_HOME
    fs::create_directories(dir.file("home"));
    write_file_atomically(dir.file("home/token"), "hf_secret\n");
    EnvVar c2("HF_HUB_CACHE", dir.file("hub2"));
    EXPECT_EQ(message("org/gated"), "no error");
  }
  EXPECT_NE(message("org/nothing").find("not found on " + server.endpoint()), std::string::npos) << message("org/nothing");
  EXPECT_NE(message("org/bert-tiny@" + std::string(40, 'e')).find("no error"), std::string::npos);  // served at any rev
  server.rename("bert-tiny", "org/bert-tiny");  // a legacy id, moved under an organisation
  {
    EnvVar c4("HF_HUB_CACHE", dir.file("hub4"));
    EXPECT_EQ(message("bert-tiny"), "no error");
    EXPECT_TRUE(fs::exists(dir.file("hub4") + "/models--bert-tiny/snapshots/" + kCommit + "/model.safetensors"));
  }
  server.corrupt("model.safetensors");
  EnvVar c3("HF_HUB_CACHE", dir.file("hub3"));
  const std::string corrupt = message("org/bert-tiny");
  EXPECT_NE(corrupt.find("checksum mismatch"), std::string::npos) << corrupt;
  for (const auto& e : fs::recursive_directory_iterator(dir.file("hub3")))
    EXPECT_EQ(e.path().string().find(".incomplete"), std::string::npos) << e.path();
}

TEST(HubDownload, TheCommandLineDownloadsOnceThenRunsOffline) {
  HubServer server;
  server.add("org/bert-tiny", bert_tiny_repo());
  test::TempDir dir;
  EnvVar endpoint("HF_ENDPOINT", server.endpoint()), cache("HF_HUB_CACHE", dir.file("hub")),
      offline("HF_HUB_OFFLINE", std::nullopt), token("HF_TOKEN", std::nullopt);
  const test::Result a = test::run({"embed", "--model", "org/bert-tiny", "--text", "hi", "--output", dir.file("a.json")});
  ASSERT_EQ(a.code, 0) << a.err;
  EXPECT_NE(a.err.find("downloading it"), std::string::npos) << a.err;
  EnvVar off("HF_HUB_OFFLINE", "1");
  const int before = server.requests();
  const test::Result b = test::run({"embed", "--model", "org/bert-tiny", "--text", "hi", "--output", dir.file("b.json")});
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_EQ(read_file(dir.file("a.json")), read_file(dir.file("b.json")));
  EXPECT_EQ(server.requests(), before);
}

TEST(HubDownload, MmxDownloadPrintsTheSnapshotAndRefusesBadIds) {
  HubServer server;
  server.add("org/bert-tiny", bert_tiny_repo());
  test::TempDir dir;
  EnvVar endpoint("HF_ENDPOINT", server.endpoint()), cache("HF_HUB_CACHE", dir.file("hub")),
      offline("HF_HUB_OFFLINE", std::nullopt);
  const test::Result r = test::run({"download", "org/bert-tiny", "--revision", "main"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, dir.file("hub") + "/models--org--bert-tiny/snapshots/" + kCommit + "\n");
  EXPECT_EQ(test::run({"download", "a/b/c"}).code, 2);
  EXPECT_EQ(test::run({"download", "org/x@main", "--revision", "v1"}).code, 2);
  const test::Result missing = test::run({"download", "org/missing"});
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.err.find("not found on"), std::string::npos) << missing.err;
  EnvVar off("HF_HUB_OFFLINE", "1");
  const test::Result no = test::run({"download", "org/bert-tiny"});
  EXPECT_EQ(no.code, 1);
  EXPECT_NE(no.err.find("HF_HUB_OFFLINE is set"), std::string::npos) << no.err;
}

// A diffusers pipeline: model_index.json and the components it names, the fp16 variant's weights only
// when asked; it then generates from the Hub id exactly as from its folder.
TEST(HubDownload, APipelineDownloadsItsComponentsInTheAskedVariant) {
  HubServer server;
  const fs::path root = test::data("models/sdxl-tiny");
  HubServer::Repo repo = repo_of_folder(root);
  repo.files["sd_xl_tiny.safetensors"] = "a single-file checkpoint at the root: not fetched";
  repo.files["unused_component/config.json"] = "{}";  // a folder model_index.json does not name
  server.add("org/sdxl-tiny", repo);
  test::TempDir dir;
  EnvVar endpoint("HF_ENDPOINT", server.endpoint()), cache("HF_HUB_CACHE", dir.file("hub")),
      offline("HF_HUB_OFFLINE", std::nullopt);
  const std::string snapshot = download_model(*parse_hub_model_id("org/sdxl-tiny"), "fp16");
  std::set<std::string> got;
  for (const auto& e : fs::recursive_directory_iterator(snapshot))
    if (!e.is_directory()) got.insert(e.path().lexically_relative(snapshot).string());
  EXPECT_TRUE(got.count("model_index.json"));
  EXPECT_TRUE(got.count("unet/diffusion_pytorch_model.fp16.safetensors"));
  EXPECT_TRUE(got.count("text_encoder_2/model.fp16.safetensors"));
  EXPECT_TRUE(got.count("tokenizer/vocab.json") && got.count("tokenizer/merges.txt"));
  EXPECT_TRUE(got.count("scheduler/scheduler_config.json"));
  for (const auto& f : got) {
    EXPECT_FALSE(f.find(".safetensors") != std::string::npos && f.find(".fp16.") == std::string::npos) << f;
    EXPECT_NE(f, "sd_xl_tiny.safetensors");
    EXPECT_EQ(f.find("unused_component"), std::string::npos) << f;
  }
  GenerateOptions o;
  o.prompt = "a horse";
  o.steps = 1;
  o.latents = SafetensorsFile::open(test::data("models/sdxl-tiny-latents.safetensors")).get("latents");
  EnvVar off("HF_HUB_OFFLINE", "1");
  const Image from_hub = SDXLPipeline::load("org/sdxl-tiny", "fp16", test::placement())->generate(o).image;
  const Image from_folder = SDXLPipeline::load(test::data("models/sdxl-tiny"), "fp16", test::placement())->generate(o).image;
  EXPECT_EQ(from_hub.rgb, from_folder.rgb);
}

// Without a working network a command fails in seconds and says what to do: a refused connection is
// tried three times within about 1.5 s, a server that accepts and never answers is given up after
// HF_HUB_DOWNLOAD_TIMEOUT seconds without a byte (30 by default; 2 here) and not tried again, and a
// name that does not resolve is not retried at all.
TEST(HubDownload, UnreachableSilentAndUnknownServersFailFastWithAHint) {
  test::TempDir dir;
  EnvVar cache("HF_HUB_CACHE", dir.file("hub")), offline("HF_HUB_OFFLINE", std::nullopt), timeout("HF_HUB_DOWNLOAD_TIMEOUT", "2");
  // A port nobody listens on: bound, then closed.
  int probe = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(probe, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(probe, reinterpret_cast<sockaddr*>(&addr), &len);
  const int closed_port = ntohs(addr.sin_port);
  ::close(probe);
  // A server that completes the TCP handshake (the kernel does, from the backlog) and never answers.
  int silent = ::socket(AF_INET, SOCK_STREAM, 0);
  addr.sin_port = 0;
  ::bind(silent, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::listen(silent, 8);
  ::getsockname(silent, reinterpret_cast<sockaddr*>(&addr), &len);
  const int silent_port = ntohs(addr.sin_port);

  const struct {
    std::string endpoint;
    double most_seconds;
    bool retried;
  } cases[] = {
      {"http://127.0.0.1:" + std::to_string(closed_port), 5.0, true},
      {"http://127.0.0.1:" + std::to_string(silent_port), 6.0, false},
      {"http://mmx-no-such-host.invalid", 15.0, false},  // the resolver's time; never a retry
  };
  for (const auto& c : cases) {
    EnvVar endpoint("HF_ENDPOINT", c.endpoint);
    const auto start = std::chrono::steady_clock::now();
    const test::Result r = test::run({"embed", "--model", "org/bert-tiny", "--text", "hi"});
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_EQ(r.code, 1) << c.endpoint;
    EXPECT_LT(seconds, c.most_seconds) << c.endpoint << "\n" << r.err;
    EXPECT_NE(r.err.find("cannot reach " + c.endpoint), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("HF_HUB_OFFLINE=1"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("HF_ENDPOINT"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("retrying") != std::string::npos, c.retried) << r.err;
    // The error names the model once, at its front.
    const size_t at = r.err.find("error: ");
    ASSERT_NE(at, std::string::npos) << r.err;
    const std::string error = r.err.substr(at, r.err.find('\n', at) - at);
    size_t named = 0;
    for (size_t p = error.find("org/bert-tiny"); p != std::string::npos; p = error.find("org/bert-tiny", p + 1)) ++named;
    EXPECT_EQ(named, 1u) << error;
  }
  ::close(silent);
}

// A hostile or broken Hub, case by case (the campaign's classes): names from the network that would
// lead out of the cache, error pages and lies about a file's bytes, a server that trickles. Every case
// fails with a message, writes nothing outside the cache, and leaves no blob, link or .incomplete file.
namespace {

struct HostileHub {
  HubServer server;
  test::TempDir dir;
  std::optional<EnvVar> endpoint, cache, offline, token, home, timeout;
  HostileHub() {
    endpoint.emplace("HF_ENDPOINT", server.endpoint());
    cache.emplace("HF_HUB_CACHE", dir.file("cache/hub"));
    offline.emplace("HF_HUB_OFFLINE", std::nullopt);
    token.emplace("HF_TOKEN", std::nullopt);
    home.emplace("HF_HOME", dir.file("cache"));
    timeout.emplace("HF_HUB_DOWNLOAD_TIMEOUT", "2");
  }
  std::string download(const std::string& id) {
    try {
      download_model(*parse_hub_model_id(id));
    } catch (const Error& e) {
      return e.what();
    }
    return "no error";
  }
  // Everything under the temporary folder is inside the cache, and no blob is half-written.
  void expect_nothing_outside_or_partial(const std::string& what) {
    for (const auto& e : fs::recursive_directory_iterator(dir.path)) {
      const std::string p = e.path().string();
      EXPECT_EQ(p.rfind(dir.file("cache"), 0), 0u) << what << ": written outside the cache: " << p;
      EXPECT_EQ(p.find(".incomplete"), std::string::npos) << what << ": left " << p;
    }
  }
  std::set<std::string> blobs(const std::string& repo) {
    std::set<std::string> out;
    const std::string folder = dir.file("cache/hub/models--" + repo + "/blobs");
    if (fs::exists(folder))
      for (const auto& e : fs::directory_iterator(folder)) out.insert(e.path().filename().string());
    return out;
  }
};

}  // namespace

TEST(HubHostile, NamesFromTheNetworkCannotLeadOutOfTheCache) {
  const std::vector<std::pair<std::string, std::string>> commits = {
      {"../../../../escaped", "not a 40-hex commit hash"}, {"/tmp/escaped-absolute-0123456789abcdef0123", "not a 40-hex"},
      {std::string(40, 'G'), "not a 40-hex"}};
  for (const auto& [commit, says] : commits) {
    HostileHub hub;
    HubServer::Repo repo = bert_tiny_repo();
    repo.commit = commit;
    hub.server.add("org/bert-tiny", repo);
    const std::string why = hub.download("org/bert-tiny");
    EXPECT_NE(why.find(says), std::string::npos) << commit << ": " << why;
    hub.expect_nothing_outside_or_partial("sha " + commit);
    EXPECT_FALSE(fs::exists("/tmp/escaped-absolute-0123456789abcdef0123"));
  }
  for (const std::string& name : std::vector<std::string>{"../../../../escaped.json", "/tmp/mmx-escaped.json", "a/../../b.json",
                                                          "..\\evil.json", std::string("nul\0.json", 9), "./config.json",
                                                          "dir//x.json"}) {
    HostileHub hub;
    HubServer::Repo repo = bert_tiny_repo();
    repo.listed.push_back(name);
    hub.server.add("org/bert-tiny", repo);
    const std::string why = hub.download("org/bert-tiny");
    EXPECT_NE(why.find("not a path inside a repository"), std::string::npos) << name << ": " << why;
    hub.expect_nothing_outside_or_partial("rfilename " + name);
    EXPECT_FALSE(fs::exists("/tmp/mmx-escaped.json"));
  }
  {  // a diffusers component named with a '/': one folder of the repository, or refused
    HostileHub hub;
    HubServer::Repo repo;
    repo.commit = kCommit;
    repo.files["model_index.json"] = R"({"_class_name": "StableDiffusionXLPipeline", "a/b": ["diffusers", "UNet2DConditionModel"]})";
    repo.files["a/b/config.json"] = "{}";
    hub.server.add("org/pipe", repo);
    const std::string why = hub.download("org/pipe");
    EXPECT_NE(why.find("names component \"a/b\""), std::string::npos) << why;
    hub.expect_nothing_outside_or_partial("component a/b");
  }
  {  // a symlink planted where the partial download goes: the download refuses to write through it
    HostileHub hub;
    hub.server.add("org/bert-tiny", bert_tiny_repo());
    const std::string sha = sha256_hex(read_file(test::data("models/bert-tiny/model.safetensors")));
    fs::create_directories(hub.dir.file("cache/hub/models--org--bert-tiny/blobs"));
    write_file_atomically(hub.dir.file("cache/victim"), "precious");
    fs::create_symlink(hub.dir.file("cache/victim"), hub.dir.file("cache/hub/models--org--bert-tiny/blobs/" + sha + ".incomplete"));
    const std::string why = hub.download("org/bert-tiny");
    EXPECT_NE(why.find("resolves outside"), std::string::npos) << why;
    EXPECT_EQ(read_file(hub.dir.file("cache/victim")), "precious");
  }
}

TEST(HubHostile, ErrorPagesAndLiesNeverBecomeABlob) {
  const std::string config = read_file(test::data("models/bert-tiny/config.json"));
  {  // one 500 on a small file: retried, and the blob holds the file, not the error page before it
    HostileHub hub;
    hub.server.add("org/bert-tiny", bert_tiny_repo());
    hub.server.fail_gets("config.json", 500, 1);
    EXPECT_EQ(hub.download("org/bert-tiny"), "no error");
    EXPECT_EQ(read_file(hub.dir.file("cache/hub/models--org--bert-tiny/snapshots/" + kCommit + "/config.json")), config);
    hub.expect_nothing_outside_or_partial("one 500");
  }
  {  // 500s to the end: an error, and no blob, link or partial file for it
    HostileHub hub;
    hub.server.add("org/bert-tiny", bert_tiny_repo());
    hub.server.fail_gets("config.json", 503, 100);
    const std::string why = hub.download("org/bert-tiny");
    EXPECT_NE(why.find("HTTP 503"), std::string::npos) << why;
    EXPECT_EQ(hub.blobs("org--bert-tiny").count(test::git_blob_id(config)), 0u);
    EXPECT_FALSE(fs::exists(hub.dir.file("cache/hub/models--org--bert-tiny/snapshots/" + kCommit + "/config.json")));
    hub.expect_nothing_outside_or_partial("500s");
  }
  {  // a small file whose bytes are not the ETag's git blob
    HostileHub hub;
    hub.server.add("org/bert-tiny", bert_tiny_repo());
    hub.server.lie_etag("vocab.txt", std::string(40, 'a'));
    const std::string why = hub.download("org/bert-tiny");
    EXPECT_NE(why.find("checksum mismatch (git blob SHA-1"), std::string::npos) << why;
    EXPECT_EQ(hub.blobs("org--bert-tiny").count(std::string(40, 'a')), 0u);
    hub.expect_nothing_outside_or_partial("etag lie");
  }
  {  // more bytes than announced
    HostileHub hub;
    hub.server.add("org/bert-tiny", bert_tiny_repo());
    hub.server.oversend("config.json");
    const std::string why = hub.download("org/bert-tiny");
    EXPECT_NE(why.find("more than the " + std::to_string(config.size()) + " bytes it announced"), std::string::npos) << why;
    hub.expect_nothing_outside_or_partial("oversend");
  }
  {  // no size announced, and no end: stopped at 64 MiB, nothing kept
    HostileHub hub;
    hub.server.add("org/bert-tiny", bert_tiny_repo());
    hub.server.unsized("config.json");
    const std::string why = hub.download("org/bert-tiny");
    EXPECT_NE(why.find("config.json: the server sent more than 64 MiB for a file whose size it did not announce"),
              std::string::npos) << why;
    hub.expect_nothing_outside_or_partial("unsized");
  }
}

TEST(HubHostile, ATrickleIsGivenUpAfterTheStallTime) {
  HostileHub hub;  // HF_HUB_DOWNLOAD_TIMEOUT=2: below 1 KiB/s for 2 s is a failed transfer
  hub.server.add("org/bert-tiny", bert_tiny_repo());
  hub.server.trickle("config.json");
  const auto start = std::chrono::steady_clock::now();
  const std::string why = hub.download("org/bert-tiny");
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_NE(why.find("download failed"), std::string::npos) << why;
  EXPECT_LT(seconds, 20) << why;
  hub.expect_nothing_outside_or_partial("trickle");
}
