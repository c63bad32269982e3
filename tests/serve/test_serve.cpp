// mmx serve in-process on a free 127.0.0.1 port, driven by an HTTP client: every route gives the library's
// numbers (the CLI's) bit for bit and the fixture's within the golden bound, every error status has its
// dialect's shape, batches are shared, and the limits, timeouts, disconnects and drain behave.
#include <condition_variable>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "mmx/classify.hpp"
#include "mmx/embed.hpp"
#include "mmx/image.hpp"
#include "mmx/safetensors.hpp"
#include "mmx/similarity.hpp"
#include "serve/server.hpp"
#include "serve/service.hpp"
#include "test_util.hpp"

using namespace mmx;
using nlohmann::json;

namespace {

const std::vector<std::string> kLabTexts = {"Cat with paint",     "rock statue", "frogs on leaf",           "jellyfish",
                                            "Cats don't usually", "like water",  "but this one likes paint", "quite a lot"};

// Holds the model workers before each batch while closed (so requests stay in flight).
struct Gate {
  std::mutex mutex;
  std::condition_variable cv;
  bool open = true;
  int waiting = 0;
  void pass() {
    std::unique_lock<std::mutex> lock(mutex);
    ++waiting;
    cv.notify_all();
    cv.wait(lock, [&] { return open; });
    --waiting;
  }
  void set(bool is_open) {
    std::lock_guard<std::mutex> lock(mutex);
    open = is_open;
    cv.notify_all();
  }
  void wait_for_waiting(int n) {
    std::unique_lock<std::mutex> lock(mutex);
    cv.wait(lock, [&] { return waiting >= n; });
  }
};

serve::ServeOptions options_with_models(Gate* gate = nullptr) {
  serve::ServeOptions o;
  o.port = 0;
  o.http_threads = 32;  // a few clients here; the default's hundreds of threads only slow the sanitizer builds
  o.models = {{"bert", test::data("models/bert-tiny"), test::placement()},
              {"clip", test::data("models/clip-tiny"), test::placement()},
              {"vit", test::data("models/vit-tiny-classifier"), test::placement()}};
  if (gate) o.batch.before_batch = [gate] { gate->pass(); };
  return o;
}

struct Running {
  std::unique_ptr<serve::Server> server;
  int port = 0;
  std::thread thread;
  explicit Running(serve::ServeOptions o) : server(std::make_unique<serve::Server>(std::move(o))) {
    port = server->bind();
    thread = std::thread([this] { server->run(); });
  }
  ~Running() {
    server->drain();
    thread.join();
  }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(30, 0);
    return c;
  }
  httplib::Result post(const std::string& path, const json& body, const httplib::Headers& headers = {}) const {
    return client().Post(path.c_str(), headers, body.dump(), "application/json");
  }
};

std::vector<float> floats(const json& list) { return list.get<std::vector<float>>(); }

std::vector<float> row(const Tensor& t, int64_t r) {
  return std::vector<float>(t.data<float>() + r * t.dim(1), t.data<float>() + (r + 1) * t.dim(1));
}

std::string data_url(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  const std::string bytes = s.str();
  return "data:image/png;base64," + serve::base64_encode(bytes.data(), bytes.size());
}

json image_item(const std::string& path) { return {{"type", "image_url"}, {"image_url", {{"url", data_url(path)}}}}; }

double metric(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  return 0;
}

}  // namespace

TEST(Serve, OpenAIEmbeddingsAreTheLibrarysNumbersAndTheFixtures) {
  Running s(options_with_models());
  const auto embedder = TextEmbedder::load(test::data("models/bert-tiny"), test::placement());
  const EmbedResult raw = embedder->embed(kLabTexts, EmbedOptions{});
  EmbedOptions normalized;
  normalized.normalize = true;
  const EmbedResult unit = embedder->embed(kLabTexts, normalized);
  const auto expected = SafetensorsFile::open(test::data("expected/bert-tiny.safetensors"));

  auto r = s.post("/v1/embeddings", {{"model", "bert"}, {"input", kLabTexts}, {"normalize", false}});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  json j = json::parse(r->body);
  EXPECT_EQ(j["object"], "list");
  EXPECT_EQ(j["model"], "bert");
  ASSERT_EQ(j["data"].size(), kLabTexts.size());
  Tensor got = Tensor::empty({int64_t(kLabTexts.size()), raw.embeddings.dim(1)});
  for (size_t i = 0; i < kLabTexts.size(); ++i) {
    EXPECT_EQ(j["data"][i]["index"], i);
    EXPECT_EQ(floats(j["data"][i]["embedding"]), row(raw.embeddings, int64_t(i))) << "text " << i;  // bit for bit
    const auto v = floats(j["data"][i]["embedding"]);
    std::copy(v.begin(), v.end(), got.data<float>() + int64_t(i) * got.dim(1));
  }
  test::expect_close("served mean-no-cls", got, expected.get("masked_mean_no_cls"), 1e-5);
  int64_t tokens = 0;
  for (const auto& t : kLabTexts) tokens += int64_t(embedder->tokenizer().encode(t).input_ids.size());
  EXPECT_EQ(j["usage"]["prompt_tokens"], tokens);
  EXPECT_EQ(j["usage"]["total_tokens"], tokens);

  // The default: L2-normalised, as OpenAI's and TEI's; base64 is the same floats, little-endian.
  r = s.post("/v1/embeddings", {{"model", "bert"}, {"input", kLabTexts}});
  ASSERT_EQ(r->status, 200);
  json f = json::parse(r->body);
  r = s.post("/v1/embeddings", {{"model", "bert"}, {"input", kLabTexts}, {"encoding_format", "base64"}});
  ASSERT_EQ(r->status, 200);
  json b = json::parse(r->body);
  for (size_t i = 0; i < kLabTexts.size(); ++i) {
    EXPECT_EQ(floats(f["data"][i]["embedding"]), row(unit.embeddings, int64_t(i)));
    const std::string bytes = serve::base64_decode(b["data"][i]["embedding"].get<std::string>());
    ASSERT_EQ(bytes.size(), size_t(unit.embeddings.dim(1)) * 4);
    std::vector<float> decoded(bytes.size() / 4);
    std::memcpy(decoded.data(), bytes.data(), bytes.size());
    EXPECT_EQ(decoded, row(unit.embeddings, int64_t(i)));
  }

  // One string; token ids (the tokenizer's own ids give the text's vector); dimensions renormalise.
  // A batch of one is compared with the library's batch of one: oneDNN's sgemm blocks by the row count,
  // so only equal batch shapes are bit for bit on every GEMM path.
  const EmbedResult alone = embedder->embed({kLabTexts[1]}, normalized);
  test::expect_close("one text alone vs in the batch", alone.embeddings, unit.embeddings.narrow0(1, 1), 1e-6);
  r = s.post("/v1/embeddings", {{"input", kLabTexts[1]}});  // no model: the first
  ASSERT_EQ(r->status, 200);
  EXPECT_EQ(floats(json::parse(r->body)["data"][0]["embedding"]), row(alone.embeddings, 0));
  r = s.post("/v1/embeddings", {{"model", "bert"}, {"input", {embedder->tokenizer().encode(kLabTexts[1]).input_ids}}});
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(floats(json::parse(r->body)["data"][0]["embedding"]), row(alone.embeddings, 0));
  r = s.post("/v1/embeddings", {{"model", "bert"}, {"input", "rock statue"}, {"dimensions", 8}});
  ASSERT_EQ(r->status, 200);
  const auto short_vector = floats(json::parse(r->body)["data"][0]["embedding"]);
  ASSERT_EQ(short_vector.size(), 8u);
  double norm = 0;
  for (float x : short_vector) norm += double(x) * x;
  EXPECT_NEAR(norm, 1.0, 1e-6);
  const auto first = row(raw.embeddings, 1);
  EXPECT_NEAR(short_vector[0] / short_vector[1], first[0] / first[1], 1e-5);  // the same direction, truncated
}

// A sentence-transformers folder serves what SentenceTransformer.encode gives (issue 20): its modules,
// and its texts stripped as encode() strips them.
TEST(Serve, SentenceTransformersFoldersServeTheirModules) {
  serve::ServeOptions o = options_with_models();
  o.models = {{"st", test::data("models/st-bert-tiny-dense"), test::placement()}};
  Running s(std::move(o));
  const auto embedder = TextEmbedder::load(test::data("models/st-bert-tiny-dense"), test::placement());
  const Tensor alone = embedder->embed({"Cat with paint"}, EmbedOptions{}).embeddings;
  const auto r = s.post("/v1/embeddings", {{"model", "st"}, {"input", {"  Cat with paint "}}});
  ASSERT_EQ(r->status, 200) << r->body;
  const auto served = floats(json::parse(r->body)["data"][0]["embedding"]);
  EXPECT_EQ(served.size(), 16u);  // the Dense layer's width
  EXPECT_EQ(served, row(alone, 0));
  // TEI's prompt_name: the folder's "query" prompt, left out of its pooling (include_prompt false).
  EmbedOptions query;
  query.prompt_name = "query";
  const Tensor prompted = embedder->embed({"Cat with paint"}, query).embeddings;
  auto t = s.post("/embed", {{"model", "st"}, {"inputs", "Cat with paint"}, {"prompt_name", "query"}});
  ASSERT_EQ(t->status, 200) << t->body;
  EXPECT_EQ(json::parse(t->body)[0].get<std::vector<float>>(), row(prompted, 0));
  EXPECT_NE(row(prompted, 0), row(alone, 0));
  t = s.post("/embed", {{"model", "st"}, {"inputs", "Cat with paint"}, {"prompt_name", "document"}});
  EXPECT_EQ(t->status, 422) << t->body;
  EXPECT_NE(t->body.find("'document' is not among the model's prompts (query"), std::string::npos) << t->body;
}

TEST(Serve, ImagesAsDataUrlsAndMixedInputsKeepTheirOrder) {
  Running s(options_with_models());
  const auto model = Model::load(test::data("models/clip-tiny"), test::placement());
  const Image chelsea = load_image(test::data("images/chelsea.png"));
  const Image horse = load_image(test::data("images/horse.png"));
  const Tensor images = ImageEmbedder(model).embed({chelsea, horse}, EmbedOptions{}).embeddings;
  const Tensor texts = TextEmbedder(model).embed({"a cat"}, EmbedOptions{}).embeddings;
  const json input = {image_item(test::data("images/chelsea.png")), "a cat", image_item(test::data("images/horse.png"))};
  auto r = s.post("/v1/embeddings", {{"model", "clip"}, {"input", input}, {"normalize", false}});
  ASSERT_EQ(r->status, 200) << r->body;
  const json j = json::parse(r->body);
  EXPECT_EQ(floats(j["data"][0]["embedding"]), row(images, 0));
  EXPECT_EQ(floats(j["data"][1]["embedding"]), row(texts, 0));
  EXPECT_EQ(floats(j["data"][2]["embedding"]), row(images, 1));
  // infinity's shape: strings are image URLs with "modality": "image".
  // (a batch of one against the library's batch of one: see the text case above)
  const Tensor horse_alone = ImageEmbedder(model).embed({horse}, EmbedOptions{}).embeddings;
  r = s.post("/v1/embeddings", {{"model", "clip"}, {"modality", "image"}, {"input", {data_url(test::data("images/horse.png"))}}, {"normalize", false}});
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(floats(json::parse(r->body)["data"][0]["embedding"]), row(horse_alone, 0));
  // No server file unless a folder is allowed; no URL fetching; an undecodable image is the client's error.
  for (const json& bad : {json("/etc/passwd"), json("http://example.com/a.png"), json("data:image/png;base64,iVBORw0KGgo=")}) {
    r = s.post("/v1/embeddings", {{"model", "clip"}, {"modality", "image"}, {"input", {bad}}});
    EXPECT_EQ(r->status, 400) << bad << r->body;
    EXPECT_TRUE(json::parse(r->body)["error"].contains("message"));
  }
  r = s.post("/v1/embeddings", {{"model", "bert"}, {"input", {image_item(test::data("images/horse.png"))}}});
  EXPECT_EQ(r->status, 422) << r->body;  // BERT embeds no images
}

TEST(Serve, LocalFilesOnlyInsideTheAllowedFolder) {
  serve::ServeOptions o = options_with_models();
  o.allow_local_files = test::data("images");
  Running s(std::move(o));
  auto r = s.post("/v1/embeddings", {{"model", "clip"}, {"modality", "image"}, {"input", {"horse.png"}}});
  EXPECT_EQ(r->status, 200) << r->body;
  for (const char* outside : {"../models/clip-tiny/config.json", "/etc/passwd", "missing.png"}) {
    r = s.post("/v1/embeddings", {{"model", "clip"}, {"modality", "image"}, {"input", {outside}}});
    EXPECT_EQ(r->status, 400) << outside;
  }
}

TEST(Serve, TeiRoutesHaveTeisShapes) {
  Running s(options_with_models());
  const auto embedder = TextEmbedder::load(test::data("models/bert-tiny"), test::placement());
  EmbedOptions normalized;
  normalized.normalize = true;
  const Tensor unit = embedder->embed({"Cat with paint", "rock statue", "jellyfish"}, normalized).embeddings;

  auto r = s.post("/embed", {{"inputs", "Cat with paint"}});
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(json::parse(r->body)[0].get<std::vector<float>>(), row(unit, 0));
  r = s.post("/similarity", {{"inputs", {{"source_sentence", "Cat with paint"}, {"sentences", {"rock statue", "jellyfish"}}}}});
  ASSERT_EQ(r->status, 200) << r->body;
  const auto scores = json::parse(r->body).get<std::vector<float>>();
  ASSERT_EQ(scores.size(), 2u);
  for (int k = 0; k < 2; ++k) {
    double dot = 0;
    for (int64_t i = 0; i < unit.dim(1); ++i) dot += double(unit.data<float>()[i]) * unit.data<float>()[(k + 1) * unit.dim(1) + i];
    EXPECT_NEAR(scores[size_t(k)], dot, 1e-6);
  }
  r = s.post("/tokenize", {{"inputs", {"hello world"}}});
  ASSERT_EQ(r->status, 200);
  const json tokens = json::parse(r->body)[0];
  const Encoding e = embedder->tokenizer().encode("hello world");
  ASSERT_EQ(tokens.size(), e.input_ids.size());
  for (size_t i = 0; i < tokens.size(); ++i) EXPECT_EQ(tokens[i]["id"], e.input_ids[i]);
  EXPECT_EQ(tokens.front()["special"], true);
  EXPECT_EQ(tokens.front()["text"], "[CLS]");
  r = s.post("/tokenize", {{"inputs", "hello world"}, {"add_special_tokens", false}});
  EXPECT_EQ(json::parse(r->body)[0].size(), e.input_ids.size() - 2);

  r = s.client().Get("/info");
  ASSERT_EQ(r->status, 200);
  const json info = json::parse(r->body);
  EXPECT_EQ(info["max_input_length"], embedder->max_length());
  EXPECT_EQ(info["model_type"]["embedding"]["pooling"], "mean-no-cls");
  EXPECT_EQ(info["models"].size(), 3u);

  // Over the model's length: 413 unless truncation is asked; Right keeps the start, Left the end.
  std::string long_text;
  for (int i = 0; i < 600; ++i) long_text += "cat ";
  r = s.post("/embed", {{"inputs", long_text}});
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(json::parse(r->body)["error_type"], "Validation");
  r = s.post("/embed", {{"inputs", long_text + "dog"}, {"truncate", true}});
  EXPECT_EQ(r->status, 200);
  const auto right = json::parse(r->body)[0].get<std::vector<float>>();
  r = s.post("/embed", {{"inputs", long_text + "dog"}, {"truncate", true}, {"truncation_direction", "Left"}});
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(json::parse(r->body)[0].get<std::vector<float>>(), right);
  r = s.post("/v1/embeddings", {{"input", long_text}});
  EXPECT_EQ(r->status, 400);  // OpenAI refuses an input over the context length
}

TEST(Serve, SimilarityAndClassifyAreTheCommandLinesNumbers) {
  Running s(options_with_models());
  const auto clip = Model::load(test::data("models/clip-tiny"), test::placement());
  const Image chelsea = load_image(test::data("images/chelsea.png"));
  const Tensor texts = TextEmbedder(clip).embed({"a cat", "a dog"}, EmbedOptions{}).embeddings;
  const Tensor images = ImageEmbedder(clip).embed({chelsea}, EmbedOptions{}).embeddings;
  Tensor expected = similarity_matrix(texts, images, Score::ClipLogits, clip->logit_scale());
  softmax_(expected, SoftmaxDim::Dim0);
  auto r = s.post("/v1/similarity", {{"model", "clip"}, {"rows", {"a cat", "a dog"}}, {"columns", {image_item(test::data("images/chelsea.png"))}},
                                     {"score", "clip-logits"}, {"softmax", "dim0"}});
  ASSERT_EQ(r->status, 200) << r->body;
  const json m = json::parse(r->body)["matrix"];
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0].get<std::vector<float>>(), row(expected, 0));
  EXPECT_EQ(m[1].get<std::vector<float>>(), row(expected, 1));

  const auto zero_shot = zero_shot_classify(clip, {chelsea}, {"cat", "dog"}, "a photo of a {}.", 2);
  r = s.post("/v1/classify", {{"model", "clip"}, {"images", {image_item(test::data("images/chelsea.png"))}}, {"labels", {"cat", "dog"}}});
  ASSERT_EQ(r->status, 200) << r->body;
  json p = json::parse(r->body)["data"][0]["predictions"];
  ASSERT_EQ(p.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(p[i]["label"], zero_shot[0][i].label);
    EXPECT_EQ(p[i]["probability"].get<float>(), zero_shot[0][i].probability);
  }
  const auto head = ImageClassifier(Model::load(test::data("models/vit-tiny-classifier"), test::placement())).classify({chelsea}, 3);
  r = s.post("/v1/classify", {{"model", "vit"}, {"images", {image_item(test::data("images/chelsea.png"))}}, {"top_k", 3}});
  ASSERT_EQ(r->status, 200) << r->body;
  p = json::parse(r->body)["data"][0]["predictions"];
  ASSERT_EQ(p.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(p[i]["label"], head[0][i].label);
}

TEST(Serve, ClientErrorsAre4xxInTheRoutesDialect) {
  serve::ServeOptions o = options_with_models();
  o.max_client_batch_size = 4;
  o.payload_limit = 4096;
  Running s(std::move(o));
  struct Case {
    const char* path;
    std::string body;
    int status;
  };
  const std::string big(5000, 'a');
  const std::vector<Case> cases = {
      {"/v1/embeddings", "{not json", 400},
      {"/v1/embeddings", "[1, 2]", 422},
      {"/v1/embeddings", R"({"model": "bert"})", 400},
      {"/v1/embeddings", R"({"input": []})", 422},
      {"/v1/embeddings", R"({"input": [""]})", 422},
      {"/v1/embeddings", R"({"input": 5})", 400},
      {"/v1/embeddings", R"({"input": [["x"]]})", 400},
      {"/v1/embeddings", R"({"input": [[1, 999999]]})", 422},
      {"/v1/embeddings", R"({"input": "a", "model": "nope"})", 404},
      {"/v1/embeddings", R"({"input": "a", "encoding_format": "hex"})", 400},
      {"/v1/embeddings", R"({"input": "a", "dimensions": 0})", 400},
      {"/v1/embeddings", R"({"input": "a", "dimensions": 100000})", 400},
      {"/v1/embeddings", R"({"input": ["a", "b", "c", "d", "e"]})", 413},
      {"/v1/embeddings", "{\"input\": \"" + big + "\"}", 413},
      {"/v1/embeddings", R"({"input": "\u00ff", "model": "bert"})", 200},
      {"/v1/embeddings", "{\"input\": \"\xff\xfe\"}", 400},
      {"/embed", R"({"inputs": []})", 422},
      {"/embed", R"({"inputs": 3})", 422},
      {"/embed", R"({"inputs": "a", "truncate": "yes"})", 422},
      {"/embed", R"({"inputs": ["a", "b", "c", "d", "e"]})", 413},
      {"/similarity", R"({"inputs": {"source_sentence": "a"}})", 422},
      {"/v1/similarity", R"({"rows": "a"})", 400},
      {"/v1/similarity", R"({"rows": ["a"], "score": "manhattan"})", 400},
      {"/v1/classify", R"({"model": "bert", "images": []})", 422},
      {"/v1/classify", R"({"model": "vit", "images": ["not an image"]})", 400},
      {"/v1/classify", R"({"model": "vit", "images": ["data:,abc"]})", 400},
      {"/v1/embeddings", R"({"model": "clip", "input": "a", "modality": "sound"})", 400},
  };
  for (const Case& c : cases) {
    const auto r = s.client().Post(c.path, c.body, "application/json");
    ASSERT_TRUE(r) << c.path << " " << c.body.substr(0, 60);
    EXPECT_EQ(r->status, c.status) << c.path << " " << c.body.substr(0, 60) << " -> " << r->body;
    if (r->status == 200) continue;
    const json j = json::parse(r->body);
    if (std::string(c.path).rfind("/v1/", 0) == 0) {
      ASSERT_TRUE(j["error"].is_object()) << r->body;
      EXPECT_FALSE(j["error"]["message"].get<std::string>().empty());
      EXPECT_TRUE(j["error"].contains("type") && j["error"].contains("code"));
    } else {
      EXPECT_TRUE(j["error"].is_string()) << r->body;
      EXPECT_TRUE(j["error_type"].is_string()) << r->body;
    }
  }
  EXPECT_EQ(s.client().Get("/nowhere")->status, 404);
}

TEST(Serve, ApiKeyGuardsEveryRouteButTheProbes) {
  serve::ServeOptions o = options_with_models();
  o.api_key = "sekret";
  Running s(std::move(o));
  auto r = s.post("/v1/embeddings", {{"input", "a"}});
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(json::parse(r->body)["error"]["type"], "authentication_error");
  EXPECT_EQ(s.post("/embed", {{"inputs", "a"}}, {{"Authorization", "Bearer wrong"}})->status, 401);
  EXPECT_EQ(s.post("/embed", {{"inputs", "a"}}, {{"Authorization", "Bearer sekret"}})->status, 200);
  for (const char* probe : {"/health", "/ready", "/metrics"}) EXPECT_EQ(s.client().Get(probe)->status, 200) << probe;
}

TEST(Serve, RequestsOfSeveralClientsShareABatch) {
  Gate gate;
  Running s(options_with_models(&gate));
  const std::string before = s.client().Get("/metrics")->body;
  gate.set(false);
  std::vector<std::thread> clients;
  std::vector<int> statuses(5, 0);
  // The first request's batch is held at the gate; four more queue behind it and form one batch.
  clients.emplace_back([&] { statuses[0] = s.post("/embed", {{"inputs", "first"}})->status; });
  gate.wait_for_waiting(1);
  for (int i = 1; i < 5; ++i) clients.emplace_back([&, i] { statuses[size_t(i)] = s.post("/embed", {{"inputs", kLabTexts[size_t(i)]}})->status; });
  // Wait until the four are queued.
  for (int tries = 0; tries < 500 && metric(s.client().Get("/metrics")->body, "mmx_queue_size{model=\"bert\"}") < 4; ++tries)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  gate.set(true);
  for (auto& c : clients) c.join();
  for (int st : statuses) EXPECT_EQ(st, 200);
  const std::string after = s.client().Get("/metrics")->body;
  const std::string batches = "mmx_batch_size_count{model=\"bert\"}", inputs = "mmx_batch_size_sum{model=\"bert\"}";
  EXPECT_EQ(metric(after, inputs) - metric(before, inputs), 5);
  EXPECT_EQ(metric(after, batches) - metric(before, batches), 2);  // the held one, then the other four together
}

TEST(Serve, FullServerAnswers429AndLateRequests504AndLeftClientsAreDropped) {
  Gate gate;
  serve::ServeOptions o = options_with_models(&gate);
  o.max_concurrent_requests = 2;
  o.request_timeout_s = 2;  // long enough for a slow (sanitizer) build to send the third request meanwhile
  Running s(std::move(o));
  gate.set(false);
  int held_status = 0;
  std::thread held([&] { held_status = s.post("/embed", {{"inputs", "held"}})->status; });
  gate.wait_for_waiting(1);
  // A client that gives up after 100 ms: its request leaves the queue.
  std::thread leaver([&] {
    httplib::Client c("127.0.0.1", s.port);
    c.set_read_timeout(0, 100000);
    EXPECT_FALSE(c.Post("/embed", json{{"inputs", "leaving"}}.dump(), "application/json"));
  });
  leaver.join();
  for (int tries = 0; tries < 100; ++tries) {
    if (metric(s.client().Get("/metrics")->body, "mmx_dropped_requests_total{model=\"bert\",reason=\"client_disconnected\"}") >= 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(metric(s.client().Get("/metrics")->body, "mmx_dropped_requests_total{model=\"bert\",reason=\"client_disconnected\"}"), 1);
  // Two in flight (the held one and this one, which times out): a third is refused with Retry-After.
  int late_status = 0;
  std::thread late([&] { late_status = s.post("/embed", {{"inputs", "late"}})->status; });
  for (int tries = 0; tries < 200 && metric(s.client().Get("/metrics")->body, "mmx_requests_in_flight") < 2; ++tries)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const auto refused = s.post("/embed", {{"inputs", "refused"}});
  EXPECT_EQ(refused->status, 429);
  EXPECT_EQ(refused->get_header_value("Retry-After"), "1");
  EXPECT_EQ(json::parse(refused->body)["error_type"], "Overloaded");
  late.join();
  EXPECT_EQ(late_status, 504);
  gate.set(true);
  held.join();
  EXPECT_EQ(held_status, 504);  // held past the timeout too
  EXPECT_EQ(s.post("/embed", {{"inputs", "after"}})->status, 200);  // and the server goes on
  EXPECT_EQ(metric(s.client().Get("/metrics")->body, "mmx_dropped_requests_total{model=\"bert\",reason=\"timeout\"}"), 2);
}

TEST(Serve, DrainFinishesTheRequestInFlight) {
  Gate gate;
  auto server = std::make_unique<serve::Server>(options_with_models(&gate));
  const int port = server->bind();
  std::thread runner([&] { server->run(); });
  httplib::Client c("127.0.0.1", port);
  EXPECT_EQ(c.Get("/ready")->status, 200);
  gate.set(false);
  int status = 0;
  std::string body;
  std::thread inflight([&] {
    httplib::Client client("127.0.0.1", port);
    client.set_read_timeout(30, 0);
    auto r = client.Post("/v1/embeddings", json{{"input", "in flight"}}.dump(), "application/json");
    status = r ? r->status : -1;
    body = r ? r->body : "";
  });
  gate.wait_for_waiting(1);
  server->drain();
  EXPECT_FALSE(server->ready());
  httplib::Client fresh("127.0.0.1", port);
  fresh.set_connection_timeout(1, 0);
  EXPECT_FALSE(fresh.Get("/health"));  // the listener is closed
  gate.set(true);
  inflight.join();
  runner.join();  // run() returns once the request in flight is answered
  EXPECT_EQ(status, 200);
  EXPECT_EQ(json::parse(body)["data"].size(), 1u);
}

TEST(Serve, MetricsAreValidPrometheusText) {
  Running s(options_with_models());
  ASSERT_EQ(s.post("/embed", {{"inputs", "a"}})->status, 200);
  ASSERT_EQ(s.post("/embed", {{"inputs", 1}})->status, 422);
  // A request is counted just after its answer is sent.
  auto r = s.client().Get("/metrics");
  for (int tries = 0; tries < 100 && metric(r->body, "mmx_requests_total{route=\"/embed\",status=\"422\"}") < 1; ++tries) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    r = s.client().Get("/metrics");
  }
  ASSERT_EQ(r->status, 200);
  EXPECT_EQ(r->get_header_value("Content-Type").rfind("text/plain; version=0.0.4", 0), 0u);
  const std::regex sample(R"re(^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? (-?[0-9.e+-]+|\+Inf|-Inf|NaN)$)re");
  const std::regex comment(R"(^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+$)");
  std::istringstream in(r->body);
  int samples = 0;
  for (std::string line; std::getline(in, line);) {
    EXPECT_TRUE(std::regex_match(line, line[0] == '#' ? comment : sample)) << line;
    samples += line[0] != '#';
  }
  EXPECT_GT(samples, 20);
  EXPECT_EQ(metric(r->body, "mmx_requests_total{route=\"/embed\",status=\"200\"}"), 1);
  EXPECT_EQ(metric(r->body, "mmx_requests_total{route=\"/embed\",status=\"422\"}"), 1);
  EXPECT_GT(metric(r->body, "process_resident_memory_bytes"), 1e6);
  EXPECT_GT(metric(r->body, "mmx_model_load_seconds{model=\"clip\"}"), 0);
}
