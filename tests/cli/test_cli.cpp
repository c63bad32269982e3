// The mmx command end to end: outputs equal the fixtures, errors give a clear message, the right
// exit code (1 runtime, 2 usage) and no output file.
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <nlohmann/json.hpp>

#include "mmx/embedding_space.hpp"
#include "mmx/files.hpp"
#include "mmx/plot/colormap.hpp"
#include "cli/run_mmx.hpp"
#include "backend/cpu/gemm_lowp.hpp"
#include "test_util.hpp"

using namespace mmx;
using nlohmann::json;
using test::Result;
using test::run;

namespace {

const std::vector<std::string> kLabTexts = {"Cat with paint",     "rock statue", "frogs on leaf",           "jellyfish",
                                            "Cats don't usually", "like water",  "but this one likes paint", "quite a lot"};

std::vector<std::string> embed_args(const std::string& model, const std::vector<std::string>& extra) {
  std::vector<std::string> a = {"embed", "--model", model};
  for (const auto& t : kLabTexts) {
    a.push_back("--text");
    a.push_back(t);
  }
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

bool folder_has_only(const test::TempDir& dir, size_t n) {
  return static_cast<size_t>(std::distance(std::filesystem::directory_iterator(dir.path), {})) == n;
}

}  // namespace

TEST(Cli, EmbedEveryPoolingModeMatchesTheFixture) {
  const auto expected = SafetensorsFile::open(test::data("expected/bert-tiny.safetensors"));
  test::TempDir dir;
  for (auto [mode, key] : {std::pair{"lab", "seed_avg_embeds"}, {"mean-no-cls", "masked_mean_no_cls"},
                           {"mean", "masked_mean"}, {"cls", "cls"}, {"pooler", "pooler_output"}}) {
    const std::string out = dir.file(std::string(mode) + ".safetensors");
    const Result r = run(embed_args(test::data("models/bert-tiny"), {"--pooling", mode, "--output", out, "--token-embeddings"}));
    ASSERT_EQ(r.code, 0) << r.err;
    const auto got = SafetensorsFile::open(out);
    test::expect_close(str("cli ", mode), got.get("embeddings"), expected.get(key), 1e-5);
    test::expect_equal_i64("input_ids", got.get("input_ids"), expected.get("input_ids"));
    test::expect_close("last_hidden_state", got.get("last_hidden_state"), expected.get("last_hidden_state"), 1e-5);
  }
}

TEST(Cli, EmbedNpyAndJsonOutputs) {
  const auto expected = SafetensorsFile::open(test::data("expected/bert-tiny.safetensors"));
  test::TempDir dir;
  ASSERT_EQ(run(embed_args(test::data("models/bert-tiny"), {"--pooling", "lab", "--output", dir.file("e.npy")})).code, 0);
  const std::string npy = read_file(dir.file("e.npy"));
  ASSERT_EQ(npy.compare(0, 6, "\x93NUMPY"), 0);
  const size_t header = 10 + (static_cast<unsigned char>(npy[8]) | static_cast<unsigned char>(npy[9]) << 8);
  EXPECT_EQ(header % 64, 0u);
  EXPECT_NE(npy.find("'shape': (8, 32)"), std::string::npos);
  ASSERT_EQ(npy.size(), header + 8 * 32 * 4);
  Tensor from_npy = Tensor::empty({8, 32});
  std::memcpy(from_npy.raw_mutable(), npy.data() + header, 8 * 32 * 4);
  test::expect_close("npy lab", from_npy, expected.get("seed_avg_embeds"), 1e-5);

  ASSERT_EQ(run(embed_args(test::data("models/bert-tiny"), {"--output", dir.file("e.json")})).code, 0);
  const json j = json::parse(read_file(dir.file("e.json")));
  EXPECT_EQ(j["texts"].size(), 8u);
  Tensor from_json = Tensor::empty({8, 32});
  for (int r = 0; r < 8; ++r)
    for (int c = 0; c < 32; ++c) from_json.data<float>()[r * 32 + c] = j["embeddings"][r][c].get<float>();
  test::expect_close("json mean-no-cls (default)", from_json, expected.get("masked_mean_no_cls"), 1e-5);
}

TEST(Cli, EmbedSummaryAndTextsFile) {
  test::TempDir dir;
  std::ofstream(dir.file("texts.txt")) << "\xEF\xBB\xBF" "Cat with paint\r\nrock statue\n\n";
  const Result r = run({"embed", "--model", test::data("models/bert-tiny"), "--texts-file", dir.file("texts.txt")});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("embeddings [2, 32]"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"rock statue\""), std::string::npos) << r.out;
}

TEST(Cli, TokenizeEqualsReferenceIdsForEveryCaseThatFitsOnACommandLine) {
  const json corpus = json::parse(read_file(test::data("tokenizers/bert_cases.json")));
  std::vector<std::string> args = {"tokenize", "--model", test::data("tokenizers/bert-base-uncased"), "--padding", "none"};
  std::vector<const json*> used;
  for (const auto& c : corpus["cases"]) {
    const std::string text = c["text"];
    if (text.empty() || text.find('\0') != std::string::npos) continue;  // argv cannot hold these
    args.push_back("--text");
    args.push_back(text);
    used.push_back(&c);
  }
  ASSERT_GT(used.size(), 140u);
  const Result r = run(args);
  ASSERT_EQ(r.code, 0) << r.err;
  const json out = json::parse(r.out);
  ASSERT_EQ(out["input_ids"].size(), used.size());
  for (size_t i = 0; i < used.size(); ++i) {
    EXPECT_EQ(out["input_ids"][i], (*used[i])["input_ids"]) << (*used[i])["text"];
    EXPECT_EQ(out["token_type_ids"][i], (*used[i])["token_type_ids"]);
    EXPECT_EQ(out["attention_mask"][i], (*used[i])["attention_mask"]);
    EXPECT_EQ(out["tokens"][i].size(), out["input_ids"][i].size());
  }
}

TEST(Cli, TokenizeLabBatchPadsLikeTransformers) {
  const json corpus = json::parse(read_file(test::data("tokenizers/bert_cases.json")));
  std::vector<std::string> args = {"tokenize", "--model", test::data("models/bert-tiny")};
  for (const auto& t : kLabTexts) {
    args.push_back("--text");
    args.push_back(t);
  }
  const Result r = run(args);
  ASSERT_EQ(r.code, 0) << r.err;
  const json out = json::parse(r.out);
  EXPECT_EQ(out["input_ids"], corpus["seed_batch"]["input_ids"]);
  EXPECT_EQ(out["attention_mask"], corpus["seed_batch"]["attention_mask"]);
  EXPECT_EQ(out["tokens"][0][0], "[CLS]");
  EXPECT_EQ(out["tokens"][0][6], "[PAD]");
}

TEST(Cli, BadInputGivesAClearErrorAndNoOutput) {
  test::TempDir dir;
  const std::string out = dir.file("out.safetensors");
  std::ofstream(dir.file("latin1.txt")) << "ok line\ncaf\xe9\n";
  const std::filesystem::path no_config = dir.path / "no-config";
  std::filesystem::create_directory(no_config);
  const std::filesystem::path alien = dir.path / "alien";
  std::filesystem::create_directory(alien);
  std::ofstream((alien / "config.json").string()) << R"({"model_type": "wav2vec2"})";
  const std::filesystem::path corrupt = dir.path / "corrupt";
  std::filesystem::create_directory(corrupt);
  for (const char* f : {"config.json", "vocab.txt", "tokenizer_config.json"})
    std::filesystem::copy_file(test::data(std::string("models/bert-tiny/") + f), corrupt / f);
  const std::string weights = read_file(test::data("models/bert-tiny/model.safetensors"));
  std::ofstream((corrupt / "model.safetensors").string(), std::ios::binary) << weights.substr(0, weights.size() - 100);

  struct Case {
    std::vector<std::string> args;
    int code;
    std::string needle;
  };
  const std::string tiny = test::data("models/bert-tiny");
  const Case cases[] = {
      {{"embed", "--model", no_config.string(), "--text", "x", "--output", out}, 1, "no config.json"},
      {{"embed", "--model", alien.string(), "--text", "x", "--output", out}, 1, "model_type 'wav2vec2' is not supported"},
      {{"embed", "--model", (dir.path / "nowhere").string(), "--text", "x", "--output", out}, 1, "no such model folder"},
      {{"embed", "--model", tiny, "--output", out}, 2, "no texts"},
      {{"embed", "--model", tiny, "--texts-file", dir.file("latin1.txt"), "--output", out}, 1, "line 2 is not valid UTF-8"},
      {{"embed", "--model", tiny, "--text", "x", "--output", dir.file("missing/out.safetensors")}, 2, "does not exist"},
      {{"embed", "--model", tiny, "--text", "x", "--output", dir.file("out.txt")}, 2, "unknown extension"},
      {{"embed", "--model", corrupt.string(), "--text", "x", "--output", out}, 1, "model.safetensors"},
      {{"embed", "--model", tiny, "--text", "x", "--pooling", "median"}, 2, "unknown pooling 'median'"},
      {{"embed", "--model", tiny, "--text", "x", "--frobnicate"}, 2, "unknown option '--frobnicate'"},
      {{"embed", "--model", tiny, "--text", "x", "--threads", "two"}, 2, "--threads expects an integer"},
      {{"frobnicate"}, 2, "unknown command"},
  };
  for (const auto& c : cases) {
    const Result r = run(c.args);
    std::string joined;
    for (const auto& a : c.args) joined += a + " ";
    EXPECT_EQ(r.code, c.code) << joined << "\n" << r.err;
    EXPECT_NE(r.err.find(c.needle), std::string::npos) << joined << "\nstderr: " << r.err;
    EXPECT_FALSE(std::filesystem::exists(out)) << joined;
  }
  // Only the inputs made above remain: no output, no temporary file.
  EXPECT_TRUE(folder_has_only(dir, 4));
}

TEST(Cli, PoolerWithoutPoolerWeightsIsAnError) {
  test::TempDir dir;
  const std::filesystem::path model = dir.path / "no-pooler";
  std::filesystem::create_directory(model);
  for (const char* f : {"config.json", "vocab.txt", "tokenizer_config.json"})
    std::filesystem::copy_file(test::data(std::string("models/bert-tiny/") + f), model / f);
  const auto source = SafetensorsFile::open(test::data("models/bert-tiny/model.safetensors"));
  std::vector<std::pair<std::string, Tensor>> kept;
  for (const auto& t : source.tensors())
    if (t.name.rfind("pooler.", 0) != 0) kept.emplace_back(t.name, source.get(t.name));
  write_safetensors((model / "model.safetensors").string(), kept);
  const Result bad = run({"embed", "--model", model.string(), "--text", "x", "--pooling", "pooler"});
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("no pooler weights"), std::string::npos) << bad.err;
  EXPECT_EQ(run({"embed", "--model", model.string(), "--text", "x", "--pooling", "cls"}).code, 0);
}

TEST(Cli, HelpTeaches) {
  const Result r = run({"embed", "--help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("mean-no-cls"), std::string::npos);
  EXPECT_NE(r.out.find("example"), std::string::npos);
  EXPECT_EQ(run({"--help"}).code, 0);
  EXPECT_EQ(run({}).code, 2);
}

TEST(CliImages, PreprocessEqualsTheFixtureForEveryImageTheReferenceOpened) {
  test::TempDir dir;
  for (const std::string which : {"vit", "clip"}) {
    const auto expected = SafetensorsFile::open(test::data("preprocess/" + which + "_pixel_values.safetensors"));
    std::vector<std::string> args = {"preprocess", "--model", test::data("preprocess/" + which), "--output",
                                     dir.file(which + ".safetensors")};
    std::vector<std::string> names;
    for (const auto& t : expected.tensors())
      if (t.name.find(':') == std::string::npos) {
        names.push_back(t.name);
        args.push_back("--image");
        args.push_back(test::data("images/" + t.name));
      }
    const Result r = run(args);
    ASSERT_EQ(r.code, 0) << r.err;
    const Tensor got = SafetensorsFile::open(dir.file(which + ".safetensors")).get("pixel_values");
    ASSERT_EQ(got.dim(0), static_cast<int64_t>(names.size()));
    for (size_t i = 0; i < names.size(); ++i)
      test::expect_close("cli preprocess " + which + " " + names[i], got.narrow0(int64_t(i), 1).reshape({3, 224, 224}),
                         expected.get(names[i]), 0.0);
  }
}

TEST(CliImages, OneByOneImageIsTheReferencesConstant) {
  // status.json: told channels_last, the processors turn the 1×1 image into one constant per channel.
  const json status = json::parse(read_file(test::data("preprocess/status.json")));
  test::TempDir dir;
  for (const std::string which : {"vit", "clip"}) {
    const Result r = run({"preprocess", "--model", test::data("preprocess/" + which), "--image",
                          test::data("images/pixel_1x1.png"), "--output", dir.file("p.safetensors")});
    ASSERT_EQ(r.code, 0) << r.err;
    const Tensor got = SafetensorsFile::open(dir.file("p.safetensors")).get("pixel_values");
    const auto& want = status["images"]["pixel_1x1.png"][which + ":channels_last"]["every_pixel_rgb"];
    for (int c = 0; c < 3; ++c)
      for (int64_t i = 0; i < 224 * 224; ++i)
        ASSERT_EQ(got.data<float>()[c * 224 * 224 + i], want[c].get<float>()) << which << " channel " << c;
  }
}

TEST(CliImages, EmbedAndClassifyMatchTheFixtures) {
  const auto vit = SafetensorsFile::open(test::data("expected/vit-tiny.safetensors"));
  const auto cls = SafetensorsFile::open(test::data("expected/vit-tiny-classifier.safetensors"));
  test::TempDir dir;
  std::vector<std::string> images;
  for (const char* f : {"astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg"}) {
    images.push_back("--image");
    images.push_back(test::data(std::string("images/") + f));
  }
  std::vector<std::string> args = {"embed", "--model", test::data("models/vit-tiny"), "--output", dir.file("v.safetensors"),
                                   "--token-embeddings"};
  args.insert(args.end(), images.begin(), images.end());
  Result r = run(args);
  ASSERT_EQ(r.code, 0) << r.err;
  const auto got = SafetensorsFile::open(dir.file("v.safetensors"));
  test::expect_close("cli vit mean-no-cls", got.get("embeddings"), vit.get("image_avg_embeds"), 1e-5);
  test::expect_close("cli vit last_hidden_state", got.get("last_hidden_state"), vit.get("last_hidden_state"), 1e-5);
  EXPECT_EQ(shape_str(got.get("pixel_values").shape()), "[4, 3, 224, 224]");

  args = {"classify", "--model", test::data("models/vit-tiny-classifier"), "--json", "--top-k", "10"};
  args.insert(args.end(), images.begin(), images.end());
  r = run(args);
  ASSERT_EQ(r.code, 0) << r.err;
  const json out = json::parse(r.out);
  ASSERT_EQ(out.size(), 4u);
  const std::vector<std::string> labels = {"astronaut", "tabby cat", "coffee mug", "rocket", "jellyfish",
                                           "tree frog", "rock statue", "paint", "leaf", "horse"};
  Tensor probs = Tensor::empty({4, 10});
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(out[i]["image"], images[2 * i + 1]);
    ASSERT_EQ(out[i]["predictions"].size(), 10u);
    for (const auto& p : out[i]["predictions"]) {
      const auto id = std::find(labels.begin(), labels.end(), p["label"].get<std::string>()) - labels.begin();
      probs.data<float>()[i * 10 + id] = p["probability"].get<float>();
    }
  }
  test::expect_close("cli classify probabilities", probs, cls.get("probs"), 1e-5);
}

TEST(CliImages, BadImagesAreNamedAndSkippingLeavesOthersUnchanged) {
  test::TempDir dir;
  const std::string good = test::data("images/chelsea.png"), bad = test::data("images/truncated.jpg");
  Result r = run({"embed", "--model", test::data("models/vit-tiny"), "--image", good, "--image", bad, "--output",
                  dir.file("e.safetensors")});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("truncated.jpg"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir.file("e.safetensors")));
  r = run({"embed", "--model", test::data("models/vit-tiny"), "--image", good, "--image", bad, "--skip-bad-images",
           "--output", dir.file("skip.safetensors")});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("skipping"), std::string::npos);
  ASSERT_EQ(run({"embed", "--model", test::data("models/vit-tiny"), "--image", good, "--output", dir.file("alone.safetensors")}).code, 0);
  test::expect_close("good image with a bad neighbour", SafetensorsFile::open(dir.file("skip.safetensors")).get("embeddings"),
                     SafetensorsFile::open(dir.file("alone.safetensors")).get("embeddings"), 0.0);
  r = run({"embed", "--model", test::data("models/vit-tiny"), "--image", dir.file("nothing-*.png")});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("matches no file"), std::string::npos) << r.err;
  r = run({"embed", "--model", test::data("models/vit-tiny"), "--text", "a cat"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("embeds images, not texts"), std::string::npos) << r.err;
}

TEST(CliClip, SimilarityReproducesTheLabsMatrices) {
  const auto expected = SafetensorsFile::open(test::data("expected/clip-tiny.safetensors"));
  std::vector<std::string> images;
  for (const char* f : {"astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg"}) {
    images.push_back("--image");
    images.push_back(test::data(std::string("images/") + f));
  }
  const std::pair<const char*, std::vector<std::string>> sets[] = {
      {"seed_captions_image", {"Cat with paint", "rock statue", "frogs on leaf", "jellyfish"}},
      {"seed_dialogue_image", {"Cats don't usually", "like water", "but this one likes paint", "quite a lot"}}};
  for (const auto& [key, texts] : sets) {
    std::vector<std::string> args = {"similarity", "--model", test::data("models/clip-tiny"), "--json", "--lab"};
    for (const auto& t : texts) {
      args.push_back("--text");
      args.push_back(t);
    }
    args.insert(args.end(), images.begin(), images.end());
    const Result r = run(args);
    ASSERT_EQ(r.code, 0) << r.err;
    const json out = json::parse(r.out);
    EXPECT_EQ(out["rows"], json(texts));
    EXPECT_EQ(out["score"], "dot");
    EXPECT_EQ(out["softmax"], "dim0");
    Tensor got = Tensor::empty({4, 4});
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 4; ++j) got.data<float>()[i * 4 + j] = out["matrix"][i][j].get<float>();
    test::expect_close(std::string("cli similarity ") + key, got, expected.get(key), 1e-5);
  }
}

TEST(CliClip, BadInputIsExplained) {
  const std::string clip = test::data("models/clip-tiny"), vit = test::data("models/vit-tiny");
  const std::string image = test::data("images/chelsea.png");
  Result r = run({"similarity", "--text-model", clip, "--image-model", vit, "--text", "a cat", "--image", image});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("16 dimensions, column embeddings 32"), std::string::npos) << r.err;
  r = run({"classify", "--model", clip, "--image", image, "--labels", "cat,,dog"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("empty label"), std::string::npos) << r.err;
  r = run({"classify", "--model", clip, "--image", image, "--labels", "cat,dog", "--template", "a photo"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("has no {}"), std::string::npos) << r.err;
  std::string long_text;
  for (int i = 0; i < 100; ++i) long_text += "cat ";
  r = run({"embed", "--model", clip, "--text", "short", "--text", long_text});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("truncated: text 2 (102 tokens)"), std::string::npos) << r.err;
  r = run({"embed", "--model", clip, "--text", "a cat", "--pooling", "cls"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("not a CLIP pooling"), std::string::npos) << r.err;
}

TEST(CliClip, TokenizeWorksOnTokenizerOnlyFolders) {
  const json corpus = json::parse(read_file(test::data("tokenizers/clip_cases.json")));
  const Result r = run({"tokenize", "--model", test::data("tokenizers/sdxl-tokenizer_2"), "--padding", "max_length",
                        "--max-length", "77", "--text", corpus["cases"][0]["text"].get<std::string>()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["input_ids"][0], corpus["cases"][0]["sdxl_tokenizer_2_max_length_77_input_ids"]);
}

// --device and --dtype: the placement of every model a command loads.
TEST(CliPlacement, HalfWeightsOnTheCpuMatchTheirReference) {
  const auto expected = SafetensorsFile::open(test::data("expected/bert-tiny-f16.safetensors"));
  test::TempDir dir;
  const Result r = run(embed_args(test::data("models/bert-tiny"),
                                  {"--dtype", "f16", "--pooling", "lab", "--output", dir.file("e.safetensors")}));
  ASSERT_EQ(r.code, 0) << r.err;
  test::expect_close("cli --dtype f16 (cpu)", SafetensorsFile::open(dir.file("e.safetensors")).get("embeddings"),
                     expected.get("f16_weights_seed_avg_embeds"), 1e-5);
}

// --dtype bf16 | int8 on the CPU: the same command, the same output format, embeddings close to f32 (the
// bounds themselves are tested in golden/test_low_precision.cpp).
TEST(CliPlacement, Bf16AndInt8EmbedLikeF32) {
  test::TempDir dir;
  const Result f32 = run(embed_args(test::data("models/bert-tiny"), {"--output", dir.file("f32.safetensors")}));
  ASSERT_EQ(f32.code, 0) << f32.err;
  const Tensor want = SafetensorsFile::open(dir.file("f32.safetensors")).get("embeddings");
  for (const char* dtype : {"bf16", "int8"}) {
    const std::string out = dir.file(std::string(dtype) + ".safetensors");
    const Result r = run(embed_args(test::data("models/bert-tiny"), {"--dtype", dtype, "--output", out}));
    ASSERT_EQ(r.code, 0) << dtype << ": " << r.err;
    const Tensor got = SafetensorsFile::open(out).get("embeddings");
    ASSERT_EQ(got.shape(), want.shape());
    // With a unit (not MMX_GEMM_LOWP=none, the f32 fall-back) the numbers are not f32's.
    const bool unit = cpu::lowp_kernel(std::string(dtype) == "bf16" ? cpu::LowpType::BF16 : cpu::LowpType::Int8);
    if (unit || std::string(dtype) == "bf16") EXPECT_GT(test::diff(got, want).max_abs, 0.0) << dtype << " should not be f32 exactly";
    EXPECT_LT(test::diff(got, want).max_abs, 5e-2) << dtype;
  }
}

TEST(CliPlacement, DevicesThatAreNotThereAreRefusedBeforeAnyWork) {
  test::TempDir dir;
  Result r = run(embed_args(test::data("models/bert-tiny"), {"--device", "tpu", "--output", dir.file("e.json")}));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("unknown device 'tpu'"), std::string::npos) << r.err;
  r = run(embed_args(test::data("models/bert-tiny"), {"--dtype", "f8", "--output", dir.file("e.json")}));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("unknown dtype 'f8'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("int8"), std::string::npos) << "the hint names every dtype: " << r.err;
  // int8 is for the encoders; generation refuses it before loading anything, naming what to use instead.
  r = run({"generate", "--model", test::data("models/sdxl-tiny"), "--prompt", "a cat", "--steps", "1", "--dtype", "int8",
           "--output", dir.file("g.png")});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("int8 is for the text and image encoders"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("bf16"), std::string::npos) << r.err;
  // No GPU number 200 anywhere: refused, exit 1 (no such device) or 2 (this build has no CUDA backend).
  r = run(embed_args(test::data("models/bert-tiny"), {"--device", "cuda:200", "--output", dir.file("e.json")}));
  EXPECT_TRUE(r.code == 1 || r.code == 2) << r.code;
  EXPECT_NE(r.err.find("cuda:200"), std::string::npos) << r.err;
  EXPECT_TRUE(folder_has_only(dir, 0));
}

// Backends other than the CPU are loaded only when a device of theirs is asked for.
TEST(CliPlacement, TheCpuPathLoadsNoOtherBackend) {
  const test::EnvVar log("MMX_LOG", std::string("debug"));
  Result r = run({"--version"});
  EXPECT_EQ(r.code, 0);
  r = run({"embed", "--model", test::data("models/bert-tiny"), "--text", "hi"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err.find("backend from"), std::string::npos) << r.err;
  r = run({"embed", "--model", test::data("models/bert-tiny"), "--text", "hi", "--device", "cuda:200"});
  const bool built = r.code == 1;  // the module loaded and saw no such device
  EXPECT_EQ(r.err.find("backend from") != std::string::npos, built) << r.err;
}

TEST(CliClip, TextsAndImagesOfOneFolderLoadItOnce) {
  const Result r = run({"embed", "--model", test::data("models/clip-tiny"), "--text", "a cat", "--image",
                        test::data("images/chelsea.png"), "--verbose"});
  ASSERT_EQ(r.code, 0) << r.err;
  size_t loads = 0;
  for (size_t at = r.err.find("info: loading "); at != std::string::npos; at = r.err.find("info: loading ", at + 1)) ++loads;
  EXPECT_EQ(loads, 1u) << r.err;
}

// The message fits the command: a ViT without a classifier head, zero-shot labels for a model that has
// no texts.
TEST(CliImages, ClassifyExplainsWhatTheModelLacks) {
  const std::string image = test::data("images/chelsea.png");
  Result r = run({"classify", "--model", test::data("models/vit-tiny"), "--image", image});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("without a classifier head is not an image classifier"), std::string::npos) << r.err;
  EXPECT_LT(std::count(r.err.begin(), r.err.end(), '\n'), 5) << r.err;
  r = run({"classify", "--model", test::data("models/vit-tiny-classifier"), "--image", image, "--labels", "cat,dog"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("zero-shot classification needs a model whose texts and images share one space"), std::string::npos)
      << r.err;
  EXPECT_EQ(r.err.find("use --image"), std::string::npos) << r.err;
}

TEST(Cli, TyposAreAnsweredWithTheNearestName) {
  Result r = run({"embd", "--model", "x"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("did you mean 'embed'?"), std::string::npos) << r.err;
  r = run({"embed", "--modle", "x"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("did you mean --model?"), std::string::npos) << r.err;
  r = run({"similarity", "--scor", "dot"});
  EXPECT_NE(r.err.find("did you mean --score?"), std::string::npos) << r.err;
  r = run({"frobnicate"});
  EXPECT_EQ(r.err.find("did you mean"), std::string::npos) << r.err;  // nothing near: no guess
  r = run({});
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(r.out.empty());  // a usage error: the help goes to stderr
  EXPECT_NE(r.err.find("usage: mmx"), std::string::npos);
  EXPECT_EQ(run({"-h"}).code, 0);
  EXPECT_NE(run({"help", "embed"}).out.find("pooling modes"), std::string::npos);
  EXPECT_NE(run({"embed", "-h"}).out.find("pooling modes"), std::string::npos);
}

TEST(Cli, VersionSaysWhatThisBuildHas) {
  for (const char* flag : {"--version", "-V"}) {
    const Result r = run({flag});
    EXPECT_EQ(r.code, 0);
    EXPECT_EQ(r.out.rfind("mmx 0.1.0 (commit ", 0), 0u) << r.out;
    EXPECT_NE(r.out.find("cpu: "), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("GEMM on"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("cuda: "), std::string::npos) << r.out;  // built as a module, or not in this build
  }
}

TEST(Cli, QuietIsQuiet) {
  test::TempDir dir;
  const Result r = run(embed_args(test::data("models/bert-tiny"), {"--output", dir.file("e.json"), "--quiet"}));
  ASSERT_EQ(r.code, 0);
  EXPECT_TRUE(r.err.empty()) << r.err;
}

// "% of peak" is read against this machine's measured FMA peak (the same threads and vector width as the
// GEMM), so a GEMM never shows more than 100 %.
TEST(Cli, BenchRatesAgainstTheMeasuredPeak) {
  const Result r = run({"bench", "gemm-512x512x512", "gemm-96x96x96", "--runs", "3", "--threads", "1", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  for (const auto& w : json::parse(r.out)) {
    EXPECT_GT(w["peak_gflops"].get<double>(), 1.0) << w;
    EXPECT_GT(w["peak_fraction"].get<double>(), 0.0) << w;
    EXPECT_LE(w["peak_fraction"].get<double>(), 1.0) << w;
    EXPECT_NEAR(w["peak_fraction"].get<double>(), w["gflops"].get<double>() / w["peak_gflops"].get<double>(), 1e-9) << w;
  }
}

// --write-random NAME=DIR: a full-size folder (random weights, the real config and tokenizer) that the
// other commands load like a Hub folder; unknown names and non-empty folders are refused.
TEST(Cli, BenchWritesARandomModelFolderTheOtherCommandsLoad) {
  test::TempDir dir;
  const std::string folder = dir.file("bert");
  const Result w = run({"bench", "--write-random", "bert-base-uncased=" + folder, "--data", test::data("")});
  ASSERT_EQ(w.code, 0) << w.err;
  for (const char* f : {"config.json", "vocab.txt", "tokenizer_config.json", "model.safetensors"})
    EXPECT_TRUE(std::filesystem::exists(std::filesystem::path(folder) / f)) << f;
  const Result e = run({"embed", "--model", folder, "--text", "A tabby cat", "--json"});
  ASSERT_EQ(e.code, 0) << e.err;
  EXPECT_EQ(json::parse(e.out)["embeddings"][0].size(), 768u);
  EXPECT_EQ(run({"bench", "--write-random", "bert-base-uncased=" + folder, "--data", test::data("")}).code, 1);  // not empty
  const Result unknown = run({"bench", "--write-random", "gpt2=" + dir.file("g"), "--data", test::data("")});
  EXPECT_EQ(unknown.code, 2);
  EXPECT_NE(unknown.err.find("bert-base-uncased"), std::string::npos) << unknown.err;
}

// --background-load K times beside K spinning processes (a busy machine) and ends them with the run.
TEST(Cli, BenchCanTimeOnABusyMachine) {
  const Result r = run({"bench", "gemm-96x96x96", "--runs", "2", "--threads", "1", "--background-load", "1", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)[0]["background_load"], 1) << r.out;
  // The spinners are forked copies of the bench (same command line): none is left once it has returned.
  int left = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    std::string cmdline;
    try {
      cmdline = read_file((e.path() / "cmdline").string());
    } catch (const Error&) {
      continue;  // not a process, or gone
    }
    if (cmdline.find("--background-load") != std::string::npos && cmdline.find("gemm-96x96x96") != std::string::npos) ++left;
  }
  EXPECT_EQ(left, 0);
}

// By default a pair is scored by its cosine, without a softmax; --lab gives the lab's dot + softmax(dim 0).
TEST(CliClip, SimilarityDefaultsToCosineAndLabGivesTheLabsChoice) {
  const std::vector<std::string> args = {"similarity", "--model", test::data("models/clip-tiny"), "--json", "--text", "a cat",
                                         "--text", "a rocket", "--image", test::data("images/chelsea.png"), "--image",
                                         test::data("images/rocket.jpg")};
  const Result plain = run(args);
  ASSERT_EQ(plain.code, 0) << plain.err;
  std::vector<std::string> explicit_args = args;
  explicit_args.insert(explicit_args.end(), {"--score", "cosine", "--softmax", "none"});
  const Result cosine = run(explicit_args);
  const json p = json::parse(plain.out), c = json::parse(cosine.out);
  EXPECT_EQ(p["score"], "cosine");
  EXPECT_EQ(p["softmax"], "none");
  EXPECT_EQ(p["matrix"], c["matrix"]);
  for (const auto& row : p["matrix"])
    for (const auto& v : row) EXPECT_LE(std::fabs(v.get<double>()), 1.0 + 1e-6);
  std::vector<std::string> lab_args = args;
  lab_args.push_back("--lab");
  const json l = json::parse(run(lab_args).out);
  EXPECT_EQ(l["score"], "dot");
  EXPECT_EQ(l["softmax"], "dim0");
  for (size_t j = 0; j < 2; ++j)  // each column sums to 1
    EXPECT_NEAR(l["matrix"][0][j].get<double>() + l["matrix"][1][j].get<double>(), 1.0, 1e-6);
}

// Every example of every command's --help runs as printed (from the repository's root, here a scratch
// folder that sees tests/ through a link), except those that need what CI has not: a GPU, the network,
// or 7 GB of disk.
TEST(Cli, EveryHelpExampleRunsAsPrinted) {
  test::TempDir dir;
  std::filesystem::create_directory_symlink(std::filesystem::path(MMX_TEST_DATA).parent_path(), dir.file("tests"));
  const std::string help = run({"--help"}).out;
  std::vector<std::string> commands;  // the list under "commands:", up to the blank line
  const size_t list = help.find("commands:\n") + 10;
  std::istringstream listed(help.substr(list, help.find("\n\n", list) - list));
  for (std::string line; std::getline(listed, line);) commands.push_back(line.substr(2, line.find(' ', 2) - 2));
  ASSERT_GE(commands.size(), 9u) << help;
  int ran = 0;
  for (const std::string& command : commands) {
    const std::string text = run({command, "--help"}).out;
    const size_t examples = text.find("\nexample");
    ASSERT_NE(examples, std::string::npos) << command << " has no example";
    std::vector<std::string> lines;
    std::string pending;
    size_t at = text.find('\n', examples + 1);
    while (at != std::string::npos && at + 1 < text.size()) {
      const size_t end = text.find('\n', at + 1);
      std::string line = text.substr(at + 1, end == std::string::npos ? std::string::npos : end - at - 1);
      at = end;
      if (pending.empty() && line.rfind("  mmx ", 0) != 0) continue;
      const bool continued = !line.empty() && line.back() == '\\';
      if (continued) line.pop_back();
      pending += line;
      if (!continued) {
        lines.push_back(pending);
        pending.clear();
      }
    }
    for (const std::string& example : lines) {
      if (example.find("--device cuda") != std::string::npos || example.find("mmx download") != std::string::npos ||
          example.find("sdxl-random") != std::string::npos)
        continue;
      std::string rest = example.substr(example.find("mmx ") + 4);
      // A server runs until SIGTERM, which drains it (exit 0): it gets 3 s, on a free port.
      const bool server = rest.rfind("serve ", 0) == 0;
      if (server && rest.find("--port 8080") != std::string::npos) rest.replace(rest.find("--port 8080"), 11, "--port 0");
      const std::string shell = "cd " + test::quote(dir.path.string()) + " && " +
                                (server ? "timeout --preserve-status -s TERM 3 " : "") + test::quote(MMX_BINARY) + " " +
                                rest + " >/dev/null 2>" + test::quote(dir.file("err"));
      const int status = std::system(shell.c_str());
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << example << "\n" << read_file(dir.file("err"));
      ++ran;
    }
  }
  EXPECT_GE(ran, 12);
}

// Texts from standard input, the JSON document to standard output, and .npz that numpy.load reads
// (checked with Debian's numpy where it is installed; scripts/install-deps.sh installs it).
TEST(Cli, EmbedReadsStdinWritesStdoutAndNpz) {
  test::TempDir dir;
  write_file_atomically(dir.file("texts.txt"), "Cat with paint\nrock statue\n");
  const std::string model = test::data("models/bert-tiny");
  const std::string piped = "cd " + test::quote(dir.path.string()) + " && " + test::quote(MMX_BINARY) + " embed --model " +
                            test::quote(model) + " --texts-file - --json < texts.txt > out.json";
  ASSERT_EQ(std::system(piped.c_str()), 0);
  const Result file = run({"embed", "--model", model, "--texts-file", dir.file("texts.txt"), "--output", dir.file("f.json")});
  ASSERT_EQ(file.code, 0) << file.err;
  EXPECT_EQ(json::parse(read_file(dir.file("out.json"))), json::parse(read_file(dir.file("f.json"))));
  EXPECT_EQ(run({"embed", "--model", model, "--text", "x", "--output", "-"}).out,
            run({"embed", "--model", model, "--text", "x", "--json"}).out);
  EXPECT_EQ(run({"embed", "--model", model, "--text", "x", "--json", "--output", dir.file("a.json")}).code, 2);

  const Result npz = run({"embed", "--model", test::data("models/clip-tiny"), "--text", "a cat", "--image",
                          test::data("images/chelsea.png"), "--token-embeddings", "--output", dir.file("e.npz")});
  ASSERT_EQ(npz.code, 0) << npz.err;
  if (std::system("/usr/bin/python3 -c 'import numpy' 2>/dev/null") != 0) GTEST_SKIP() << "no numpy to read the .npz";
  const Result js = run({"embed", "--model", test::data("models/clip-tiny"), "--text", "a cat", "--image",
                         test::data("images/chelsea.png"), "--output", dir.file("e.json")});
  ASSERT_EQ(js.code, 0);
  const std::string check = "/usr/bin/python3 -c '\n"
                            "import json, sys, numpy as np\n"
                            "z = np.load(sys.argv[1]); j = json.load(open(sys.argv[2]))\n"
                            "assert sorted(z.files) == [\"attention_mask\", \"image_embeddings\", \"image_last_hidden_state\", "
                            "\"input_ids\", \"pixel_values\", \"text_embeddings\", \"text_last_hidden_state\"], z.files\n"
                            "assert z[\"input_ids\"].dtype == np.int64 and z[\"pixel_values\"].shape == (1, 3, 224, 224)\n"
                            "for k in (\"text_embeddings\", \"image_embeddings\"):\n"
                            "  assert (z[k] == np.array(j[k], dtype=np.float32)).all(), k\n"
                            "' " + test::quote(dir.file("e.npz")) + " " + test::quote(dir.file("e.json"));
  EXPECT_EQ(std::system(check.c_str()), 0);
}

// tokenize prints what the model takes, as transformers' tokenizer(...) returns it: CLIP has no token_type_ids.
TEST(CliClip, TokenizePrintsTheModelsInputNames) {
  const json clip = json::parse(run({"tokenize", "--model", test::data("models/clip-tiny"), "--text", "a cat"}).out);
  EXPECT_FALSE(clip.contains("token_type_ids")) << clip;
  EXPECT_TRUE(clip.contains("input_ids") && clip.contains("attention_mask") && clip.contains("tokens")) << clip;
  const auto bert = nlohmann::ordered_json::parse(run({"tokenize", "--model", test::data("models/bert-tiny"), "--text", "a cat"}).out);
  EXPECT_TRUE(bert.contains("token_type_ids")) << bert;
  EXPECT_EQ(bert.begin().key(), "input_ids");
}

namespace {

// What bash completes for the words typed so far (the last one being completed), from `mmx completion bash`.
std::vector<std::string> bash_completes(const std::string& script, const std::string& typed) {
  test::TempDir dir;
  write_file_atomically(dir.file("mmx.bash"), script);
  const std::string shell = "bash -c " + test::quote("source " + test::quote(dir.file("mmx.bash")) + "; COMP_WORDS=(" +
                                                     typed + "); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _mmx; " +
                                                     "printf '%s\\n' \"${COMPREPLY[@]}\"") +
                            " >" + test::quote(dir.file("out"));
  EXPECT_EQ(std::system(shell.c_str()), 0) << typed;
  std::vector<std::string> words;
  std::istringstream in(read_file(dir.file("out")));
  for (std::string w; std::getline(in, w);)
    if (!w.empty()) words.push_back(w);
  return words;
}

bool have(const char* program) {
  return std::system((std::string("command -v ") + program + " >/dev/null 2>&1").c_str()) == 0;
}

}  // namespace

TEST(Cli, BashCompletesCommandsOptionsAndTheValuesTheParserTakes) {
  const Result r = run({"completion", "bash"});
  ASSERT_EQ(r.code, 0) << r.err;
  using Words = std::vector<std::string>;
  EXPECT_EQ(bash_completes(r.out, "mmx emb"), Words{"embed"});
  EXPECT_EQ(bash_completes(r.out, "mmx similarity --cm"), Words{"--cmap"});
  EXPECT_EQ(bash_completes(r.out, "mmx generate --dev"), Words{"--device"});
  EXPECT_EQ(bash_completes(r.out, "mmx embed --device ''"), (Words{"cpu", "cuda"}));
  // Every command `mmx --help` lists is offered first.
  const Words commands = bash_completes(r.out, "mmx ''");
  for (const char* c : {"embed", "tokenize", "preprocess", "classify", "similarity", "lab", "generate", "download",
                        "bench", "completion", "manpage"})
    EXPECT_NE(std::find(commands.begin(), commands.end(), c), commands.end()) << c;
  // The values offered are exactly what the parser accepts: each is taken, none is missing.
  const Words poolings = bash_completes(r.out, "mmx embed --pooling ''");
  EXPECT_EQ(poolings.size(), 12u);  // the lab's 5, CLIP's 2, sentence-transformers' 4 and modules
  for (const auto& p : poolings) EXPECT_EQ(pooling_name(pooling_from_name(p)), p);
  const Words scores = bash_completes(r.out, "mmx similarity --score ''");
  EXPECT_EQ(scores.size(), 3u);
  for (const auto& s : scores) EXPECT_EQ(score_name(score_from_name(s)), s);
  const Words cmaps = bash_completes(r.out, "mmx lab --cmap ''");
  EXPECT_EQ(cmaps.size(), 6u);
  for (const auto& c : cmaps) EXPECT_NO_THROW(plot::colormap_table(c)) << c;
  EXPECT_EQ(bash_completes(r.out, "mmx lab --format ''"), (Words{"png", "svg", "pdf"}));
  // A file argument completes file names.
  const Words files = bash_completes(r.out, "mmx embed --texts-file " + test::quote(test::data("tokenizers/")));
  EXPECT_FALSE(files.empty());
}

TEST(Cli, ZshAndFishCompletionsParseAndFishCompletes) {
  const Result zsh = run({"completion", "zsh"}), fish = run({"completion", "fish"});
  ASSERT_EQ(zsh.code, 0) << zsh.err;
  ASSERT_EQ(fish.code, 0) << fish.err;
  EXPECT_EQ(zsh.out.rfind("#compdef mmx\n", 0), 0u);
  if (!have("zsh") || !have("fish")) GTEST_SKIP() << "zsh or fish is not installed (scripts/install-deps.sh installs both)";
  test::TempDir dir;
  write_file_atomically(dir.file("_mmx"), zsh.out);
  write_file_atomically(dir.file("mmx.fish"), fish.out);
  EXPECT_EQ(std::system(("zsh -n " + test::quote(dir.file("_mmx"))).c_str()), 0);
  EXPECT_EQ(std::system(("fish -n " + test::quote(dir.file("mmx.fish"))).c_str()), 0);
  // fish answers `complete -C`: what it would offer on the command line.
  const std::string ask = "fish -c " + test::quote("source " + test::quote(dir.file("mmx.fish")) +
                                                   "; complete -C 'mmx similarity --sc'; complete -C 'mmx embed --dtype '") +
                          " >" + test::quote(dir.file("out"));
  ASSERT_EQ(std::system(ask.c_str()), 0);
  const std::string offered = read_file(dir.file("out"));
  EXPECT_NE(offered.find("--score\t"), std::string::npos) << offered;
  for (const char* dtype : {"\nf32\t", "\nf16\t", "\nbf16\t", "\nint8\t"}) EXPECT_NE(offered.find(dtype), std::string::npos) << offered;
}

TEST(Cli, ManPageRendersWithoutWarningsAndNamesEveryCommand) {
  const Result r = run({"manpage"});
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* c : {"embed", "similarity", "lab", "generate", "download", "completion"})
    EXPECT_NE(r.out.find(std::string(".SS ") + c + "\n"), std::string::npos) << c;
  EXPECT_NE(r.out.find("\\-\\-texts\\-file"), std::string::npos);
  EXPECT_EQ(r.out.find("\xE2"), std::string::npos) << "non-ASCII reaches troff unescaped";
  if (!have("groff")) GTEST_SKIP() << "groff is not installed (scripts/install-deps.sh installs groff-base)";
  test::TempDir dir;
  write_file_atomically(dir.file("mmx.1"), r.out);
  const std::string render = "groff -man -Tutf8 -P-cbou -ww " + test::quote(dir.file("mmx.1")) + " >" +
                             test::quote(dir.file("page")) + " 2>" + test::quote(dir.file("warnings"));
  ASSERT_EQ(std::system(render.c_str()), 0);
  EXPECT_EQ(read_file(dir.file("warnings")), "");
  EXPECT_NE(read_file(dir.file("page")).find("EXIT STATUS"), std::string::npos);
}

TEST(Cli, CompletionForAnUnknownShellIsAUsageError) {
  const Result r = run({"completion", "powershell"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("bash, zsh or fish"), std::string::npos) << r.err;
}

// Many files: images go through in chunks and texts in token-budget passes, with a progress line (forced
// into the test's file by --progress), and no number differs from embedding each input on its own.
TEST(CliImages, LongEmbedRunsShowProgressAndChunkingChangesNoNumber) {
  test::TempDir dir;
  std::filesystem::create_directory(dir.file("photos"));
  const char* sources[] = {"chelsea.png", "coffee.png", "astronaut.png"};
  const int count = 70;  // more than one chunk of decoded images
  for (int i = 0; i < count; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "photos/%03d.png", i);
    std::filesystem::copy_file(test::data(std::string("images/") + sources[i % 3]), dir.file(name));
  }
  const std::string model = test::data("models/vit-tiny");
  const Result all = run({"embed", "--model", model, "--image", dir.file("photos"), "--progress", "--batch-tokens", "500",
                          "--output", dir.file("all.json")});
  ASSERT_EQ(all.code, 0) << all.err;
  EXPECT_NE(all.err.find("embedding images: 70/70  100 %"), std::string::npos) << all.err;
  EXPECT_EQ(all.err.find('\r'), std::string::npos) << "a log gets lines, not a redrawn line";
  const json rows = json::parse(read_file(dir.file("all.json")))["embeddings"];
  ASSERT_EQ(rows.size(), size_t(count));
  for (int s = 0; s < 3; ++s) {
    const Result one = run({"embed", "--model", model, "--image", test::data(std::string("images/") + sources[s]), "--json"});
    ASSERT_EQ(one.code, 0) << one.err;
    const json alone = json::parse(one.out)["embeddings"][0];
    for (int i = s; i < count; i += 3)
      for (size_t k = 0; k < alone.size(); ++k)
        ASSERT_NEAR(rows[size_t(i)][k].get<double>(), alone[k].get<double>(), 1e-6) << "image " << i << " value " << k;
  }
  // Without --progress, and not on a terminal, nothing but the status line.
  const Result plain = run({"embed", "--model", model, "--image", dir.file("photos"), "--output", dir.file("plain.json")});
  EXPECT_EQ(plain.err.find("embedding images"), std::string::npos) << plain.err;
  EXPECT_EQ(read_file(dir.file("plain.json")), read_file(dir.file("all.json")));

  std::string texts;
  for (int i = 0; i < 300; ++i) texts += "text number " + std::to_string(i * 7919) + (i % 5 ? "" : " with a longer tail") + "\n";
  write_file_atomically(dir.file("texts.txt"), texts);
  const std::string bert = test::data("models/bert-tiny");
  const Result passes = run({"embed", "--model", bert, "--texts-file", dir.file("texts.txt"), "--progress",
                             "--batch-tokens", "64", "--output", dir.file("passes.json")});
  ASSERT_EQ(passes.code, 0) << passes.err;
  EXPECT_NE(passes.err.find("embedding texts: 300/300  100 %"), std::string::npos) << passes.err;
  ASSERT_EQ(run({"embed", "--model", bert, "--texts-file", dir.file("texts.txt"), "--output", dir.file("one.json")}).code, 0);
  const json a = json::parse(read_file(dir.file("passes.json")))["embeddings"],
             b = json::parse(read_file(dir.file("one.json")))["embeddings"];
  ASSERT_EQ(a.size(), 300u);
  for (size_t r = 0; r < a.size(); ++r)
    for (size_t k = 0; k < a[r].size(); ++k) ASSERT_NEAR(a[r][k].get<double>(), b[r][k].get<double>(), 1e-6) << r;
  const Result quiet = run({"embed", "--model", bert, "--texts-file", dir.file("texts.txt"), "--progress", "--quiet",
                            "--output", dir.file("q.json")});
  EXPECT_EQ(quiet.err, "");
}

// --verbose says what was resolved: the device and threads, the model, its tokenizer and image processor.
TEST(CliClip, VerboseSaysWhatItResolved) {
  const Result r = run({"embed", "--model", test::data("models/clip-tiny"), "--text", "a cat", "--image",
                        test::data("images/chelsea.png"), "--threads", "1", "--verbose"});
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* said : {"running on cpu f32", "1 CPU threads (--threads)", "loading ", "(CLIP, cpu f32)",
                           "tokenizer: CLIPTokenizer (byte-level BPE), at most ", "image processor: CLIPImageProcessor: resize to shortest edge",
                           "(bicubic), center crop", "rescale ×1/255"})
    EXPECT_NE(r.err.find(said), std::string::npos) << said << "\n" << r.err;
  const Result plain = run({"embed", "--model", test::data("models/clip-tiny"), "--text", "a cat"});
  EXPECT_EQ(plain.err.find("info:"), std::string::npos) << plain.err;
}
