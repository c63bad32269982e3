// Image generation in mmx serve on sdxl-tiny, over real HTTP on 127.0.0.1: OpenAI's images routes give the
// library's pixels with the request's parameters inside the PNG; the job API queues, reports progress,
// streams events and cancels at the next step; the queue cap answers 429 and jobs run in order.
#include <httplib.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "mmx/files.hpp"
#include "mmx/image.hpp"
#include "mmx/text_to_image.hpp"
#include "serve/server.hpp"
#include "serve/service.hpp"
#include "test_util.hpp"

using namespace mmx;
using json = nlohmann::json;

namespace {

struct ImageServer {
  std::unique_ptr<serve::Server> server;
  int port = 0;
  std::thread thread;
  explicit ImageServer(size_t capacity = 8) {
    serve::ServeOptions o;
    o.port = 0;
    o.models = {{"sdxl", test::data("models/sdxl-tiny"), test::placement()}};
    o.images.capacity = capacity;
    o.images.lora_dir = test::data("lora");
    server = std::make_unique<serve::Server>(std::move(o));
    port = server->bind();
    thread = std::thread([this] { server->run(); });
  }
  ~ImageServer() {
    server->drain();
    thread.join();
  }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(120, 0);
    return c;
  }
  httplib::Result post(const std::string& path, const json& body) const {
    return client().Post(path.c_str(), body.dump(), "application/json");
  }
  json get(const std::string& path) const {
    auto r = client().Get(path.c_str());
    EXPECT_TRUE(r) << path;
    return r ? json::parse(r->body) : json();
  }
  json wait_done(const std::string& id) const {
    for (int i = 0; i < 2000; ++i) {
      const json j = get("/v1/jobs/" + id);
      if (j["status"] != "queued" && j["status"] != "running") return j;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ADD_FAILURE() << "job " << id << " did not finish";
    return {};
  }
};

std::string png_parameters(const std::string& png) {
  for (const auto& [k, v] : read_png_text(png, "response"))
    if (k == "parameters") return v;
  return "";
}

}  // namespace

TEST(ServeImages, GenerationsAreTheLibrarysPixelsWithTheirParameters) {
  ImageServer s;
  const json body = {{"model", "sdxl"},   {"prompt", "a red barn"}, {"size", "64x64"}, {"steps", 3},
                     {"seed", 5},         {"guidance", 4.5},        {"sampler", "Euler a"}, {"n", 2}};
  auto r = s.post("/v1/images/generations", body);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json j = json::parse(r->body);
  ASSERT_EQ(j["data"].size(), 2u);
  const auto pipe = SDXLPipeline::load(test::data("models/sdxl-tiny"), "", test::placement());
  for (int i = 0; i < 2; ++i) {
    const std::string png = serve::base64_decode(j["data"][i]["b64_json"].get<std::string>());
    const Image got = decode_image(png, "response");
    GenerateOptions o;
    o.prompt = "a red barn";
    o.width = o.height = 64;
    o.steps = 3;
    o.seed = 5 + uint64_t(i);  // n images: seed, seed + 1 (A1111's batch count)
    o.guidance_scale = 4.5f;
    o.scheduler = "Euler a";
    EXPECT_EQ(got.rgb, pipe->generate(o).image.rgb) << "image " << i;
    EXPECT_EQ(png_parameters(png), str("a red barn\nSteps: 3, Sampler: Euler a, CFG scale: 4.5, Seed: ", 5 + i,
                                       ", Size: 64x64, Model: sdxl"));
  }
  // JPEG and WebP decode; a LoRA by name changes the image, by path is refused.
  for (const std::string format : {"jpeg", "webp"}) {
    r = s.post("/v1/images/generations", {{"prompt", "a barn"}, {"size", "64x64"}, {"steps", 1}, {"seed", 1}, {"output_format", format}});
    ASSERT_EQ(r->status, 200) << r->body;
    const Image img = decode_image(serve::base64_decode(json::parse(r->body)["data"][0]["b64_json"].get<std::string>()), format);
    EXPECT_EQ(img.width, 64);
  }
  auto first_png = [&](const json& b) {
    auto res = s.post("/v1/images/generations", b);
    EXPECT_EQ(res->status, 200) << res->body;
    return serve::base64_decode(json::parse(res->body)["data"][0]["b64_json"].get<std::string>());
  };
  const json plain = {{"prompt", "a barn"}, {"size", "64x64"}, {"steps", 2}, {"seed", 1}};
  json with_lora = plain;
  with_lora["loras"] = {"sdxl-tiny-peft:0.8"};
  json tagged = plain;
  tagged["prompt"] = "a barn<lora:sdxl-tiny-peft:0.8>";
  json by_object = plain;
  by_object["loras"] = json::array({{{"name", "sdxl-tiny-peft"}, {"weight", 0.8}}});
  const Image base = decode_image(first_png(plain), "a"), adapted = decode_image(first_png(with_lora), "b"),
              by_tag = decode_image(first_png(tagged), "c");
  EXPECT_NE(base.rgb, adapted.rgb);
  EXPECT_EQ(adapted.rgb, by_tag.rgb);
  EXPECT_EQ(adapted.rgb, decode_image(first_png(by_object), "e").rgb);
  EXPECT_EQ(decode_image(first_png(plain), "d").rgb, base.rgb);  // switching back: the base weights are intact
}

TEST(ServeImages, EditsTakeMultipartImageAndMask) {
  ImageServer s;
  const std::string coffee = read_file(test::data("images/coffee.png"));
  Image mask;
  mask.width = mask.height = 64;
  mask.rgb.assign(64 * 64 * 3, 0);
  for (int64_t i = 0; i < 32 * 64 * 3; ++i) mask.rgb[size_t(i)] = 255;  // repaint the top half
  const Image small = resize(decode_image(coffee, "coffee"), 64, 64, Resample::Bicubic);
  httplib::MultipartFormDataItems items = {{"image", encode_png(small), "image.png", "image/png"},
                                           {"mask", encode_png(mask), "mask.png", "image/png"},
                                           {"prompt", "a cup of tea", "", ""},
                                           {"steps", "3", "", ""},
                                           {"seed", "9", "", ""}};
  auto r = s.client().Post("/v1/images/edits", items);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const Image got = decode_image(serve::base64_decode(json::parse(r->body)["data"][0]["b64_json"].get<std::string>()), "edit");
  const auto pipe = SDXLPipeline::load(test::data("models/sdxl-tiny"), "", test::placement());
  GenerateOptions o;
  o.prompt = "a cup of tea";
  o.image = small;
  o.mask = mask;
  o.strength = 0.9999;
  o.guidance_scale = 7.5f;
  o.steps = 3;
  o.seed = 9;
  EXPECT_EQ(got.rgb, pipe->generate(o).image.rgb);
  // No image: 400.
  r = s.client().Post("/v1/images/edits", httplib::MultipartFormDataItems{{"prompt", "x", "", ""}});
  EXPECT_EQ(r->status, 400);
}

// A running job cancelled stops within one step; events stream its progress and its end.
TEST(ServeImages, JobsReportProgressStreamEventsAndCancelAtTheNextStep) {
  ImageServer s;
  auto r = s.post("/v1/jobs", {{"prompt", "a field"}, {"size", "64x64"}, {"steps", 3}, {"seed", 2}});
  ASSERT_EQ(r->status, 202) << r->body;
  const std::string id = json::parse(r->body)["id"];
  std::string events;
  auto stream = s.client().Get(("/v1/jobs/" + id + "/events").c_str(), [&](const char* data, size_t n) {
    events.append(data, n);
    return true;
  });
  ASSERT_TRUE(stream);
  EXPECT_NE(events.find("event: done"), std::string::npos) << events;
  const json done = s.wait_done(id);
  EXPECT_EQ(done["status"], "done");
  EXPECT_EQ(done["step"], 3);
  EXPECT_NE(png_parameters(serve::base64_decode(done["data"][0]["b64_json"].get<std::string>())).find("Seed: 2"), std::string::npos);

  // A long job: cancelled while running, it ends at most one step after the cancel was taken.
  r = s.post("/v1/jobs", {{"prompt", "a field"}, {"size", "64x64"}, {"steps", 900}, {"seed", 2}});
  ASSERT_EQ(r->status, 202) << r->body;
  const std::string long_id = json::parse(r->body)["id"];
  for (int i = 0; i < 500 && s.get("/v1/jobs/" + long_id)["step"].get<int64_t>() < 3; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  auto del = s.client().Delete(("/v1/jobs/" + long_id).c_str());
  ASSERT_EQ(del->status, 200) << del->body;
  const int64_t at_cancel = json::parse(del->body)["step"];
  const json cancelled = s.wait_done(long_id);
  EXPECT_EQ(cancelled["status"], "cancelled");
  EXPECT_LE(cancelled["step"].get<int64_t>(), at_cancel + 1);
  EXPECT_LT(cancelled["step"].get<int64_t>(), 900);
  // A finished job is dropped by DELETE; then it is gone.
  EXPECT_EQ(s.client().Delete(("/v1/jobs/" + id).c_str())->status, 200);
  EXPECT_EQ(s.client().Get(("/v1/jobs/" + id).c_str())->status, 404);
  const std::string metrics = s.client().Get("/metrics")->body;
  EXPECT_NE(metrics.find("mmx_image_jobs_total{model=\"sdxl\",state=\"cancelled\"} 1"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("mmx_images_per_hour{model=\"sdxl\"} 1"), std::string::npos);
  EXPECT_NE(metrics.find("mmx_image_step_seconds_count{model=\"sdxl\"}"), std::string::npos);
}

// Behind a running job, 8 clients submit at once to a queue of 5 (queued + running): four are queued (1–4
// jobs ahead of each) and run in that order once the first is cancelled, four get 429 with Retry-After.
TEST(ServeImages, ConcurrentSubmissionsQueueInOrderUnderTheCap) {
  ImageServer s(5);
  auto r = s.post("/v1/jobs", {{"prompt", "a field"}, {"size", "64x64"}, {"steps", 900}, {"seed", 1}});
  ASSERT_EQ(r->status, 202) << r->body;
  const std::string blocker = json::parse(r->body)["id"];
  for (int i = 0; i < 500 && s.get("/v1/jobs/" + blocker)["status"] != "running"; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  std::vector<std::thread> clients;
  std::vector<int> status(8);
  std::vector<json> bodies(8);
  std::atomic<int> ready{0};
  for (int i = 0; i < 8; ++i)
    clients.emplace_back([&, i] {
      ++ready;
      while (ready < 8) std::this_thread::yield();
      auto res = s.post("/v1/jobs", {{"prompt", "a field"}, {"size", "64x64"}, {"steps", 10}, {"seed", i}});
      status[size_t(i)] = res ? res->status : -1;
      if (res && res->status == 202) bodies[size_t(i)] = json::parse(res->body);
      if (res && res->status == 429) {
        EXPECT_EQ(res->get_header_value("Retry-After"), "30");
      }
    });
  for (auto& c : clients) c.join();
  std::vector<std::pair<int64_t, std::string>> accepted;  // (jobs ahead at submission, id)
  int refused = 0;
  for (int i = 0; i < 8; ++i) {
    if (status[size_t(i)] == 202) accepted.emplace_back(bodies[size_t(i)]["queue_position"].get<int64_t>(), bodies[size_t(i)]["id"]);
    refused += status[size_t(i)] == 429;
  }
  ASSERT_EQ(accepted.size(), 4u);
  EXPECT_EQ(refused, 4);
  EXPECT_EQ(s.client().Delete(("/v1/jobs/" + blocker).c_str())->status, 200);
  std::sort(accepted.begin(), accepted.end());
  double last_end = 0;
  for (size_t k = 0; k < accepted.size(); ++k) {
    EXPECT_EQ(accepted[k].first, int64_t(k) + 1);
    const json j = s.wait_done(accepted[k].second);
    EXPECT_EQ(j["status"], "done");
    EXPECT_GE(j["started_at"].get<double>(), last_end) << "job " << k << " ran out of order";
    last_end = j["finished_at"].get<double>();
  }
}

TEST(ServeImages, BadRequestsAre4xxNamingTheField) {
  ImageServer s;
  struct Case {
    json body;
    int status;
    std::string says;
  };
  for (const Case& c : {Case{{{"size", "64x64"}}, 400, "'prompt' is required"},
                        Case{{{"prompt", "x"}, {"response_format", "url"}}, 400, "b64_json"},
                        Case{{{"prompt", "x"}, {"size", "65x64"}}, 400, "multiples of"},
                        Case{{{"prompt", "x"}, {"steps", 0}}, 400, "'steps'"},
                        Case{{{"prompt", "x"}, {"loras", {"../../etc/passwd:1"}}}, 400, "not a path"},
                        Case{{{"prompt", "x"}, {"loras", {"nope:1"}}}, 400, "no nope.safetensors"},
                        Case{{{"prompt", "x"}, {"sampler", "DPM2"}}, 400, "not implemented"},
                        Case{{{"prompt", "x"}, {"model", "other"}}, 404, "not served"},
                        Case{{{"prompt", "x"}, {"output_format", "gif"}}, 400, "png, jpeg or webp"}}) {
    auto r = s.post("/v1/images/generations", c.body);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, c.status) << c.body.dump() << " " << r->body;
    EXPECT_NE(r->body.find(c.says), std::string::npos) << c.body.dump() << " " << r->body;
  }
  auto r = s.post("/v1/embeddings", {{"model", "sdxl"}, {"input", "x"}});
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_EQ(s.client().Get("/v1/jobs/img-0-0")->status, 404);
}
