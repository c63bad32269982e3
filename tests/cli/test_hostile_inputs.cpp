// The bad-input campaign's classes, one case each, made here from the test models: configs with values
// no architecture means, weights that produce NaN, thread counts and image sizes no machine runs, latents
// that are no noise draw, and outputs that cannot all be written. Each ends with exit 1 or 2, a message
// naming what is wrong, nothing on stdout and no file written; none may crash (exit -1 is a signal).
#include <filesystem>
#include <fstream>

#include <sys/resource.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "cli/run_mmx.hpp"
#include "mmx/files.hpp"
#include "mmx/image.hpp"
#include "mmx/safetensors.hpp"
#include "test_util.hpp"
#include "unit/torch_zip.hpp"

using namespace mmx;
namespace fs = std::filesystem;

namespace {

// A copy of a test model whose JSON file `file` gets `key` = `value`.
std::string with_json_value(const test::TempDir& dir, const std::string& model, const std::string& file,
                            const std::string& key, const nlohmann::json& value) {
  const std::string copy = dir.file(model + "-" + key);
  fs::remove_all(copy);
  fs::copy(test::data("models/" + model), copy, fs::copy_options::recursive);
  nlohmann::json j = nlohmann::json::parse(read_file(copy + "/" + file));
  j[key] = value;
  write_file_atomically(copy + "/" + file, j.dump());
  return copy;
}

void expect_refused(const test::Result& r, int code, const std::string& says, const std::string& what) {
  EXPECT_EQ(r.code, code) << what << "\n" << r.err;
  EXPECT_NE(r.err.find(says), std::string::npos) << what << ": " << r.err;
  EXPECT_EQ(r.out, "") << what;
}

}  // namespace

TEST(HostileInputs, ConfigValuesNoArchitectureMeansAreRefusedWhenRead) {
  test::TempDir dir;
  const int64_t huge = int64_t(1) << 62;
  const std::vector<std::pair<std::string, nlohmann::json>> bert = {
      {"hidden_size", huge},         {"intermediate_size", huge},      {"vocab_size", INT64_MAX},
      {"max_position_embeddings", huge}, {"type_vocab_size", huge},    {"num_hidden_layers", 1000000000},
      {"num_attention_heads", 0},    {"layer_norm_eps", -1.0},         {"hidden_size", uint64_t(1) << 63}};
  for (const auto& [key, value] : bert) {
    const std::string model = with_json_value(dir, "bert-tiny", "config.json", key, value);
    expect_refused(test::run({"embed", "--model", model, "--text", "hi"}), 1, "'" + key + "'", "bert " + key + "=" + value.dump());
  }
  for (const double length : {-1e30, -5.0, 0.0, 77.5}) {  // transformers saves 1e30 for "no limit"; below 1 is no limit at all
    const std::string model = with_json_value(dir, "bert-tiny", "tokenizer_config.json", "model_max_length", length);
    expect_refused(test::run({"embed", "--model", model, "--text", "hi"}), 1, "'model_max_length'",
                   "model_max_length=" + std::to_string(length));
  }
  for (const auto& [key, value] : std::vector<std::pair<std::string, nlohmann::json>>{
           {"image_std", {1e-45, 1e-45, 1e-45}}, {"rescale_factor", 1e308}, {"image_mean", {1e300, 0, 0}}, {"size", {{"height", huge}, {"width", 1}}}}) {
    const std::string model = with_json_value(dir, "vit-tiny", "preprocessor_config.json", key, value);
    expect_refused(test::run({"embed", "--model", model, "--image", test::data("images/astronaut.png")}), 1, key,
                   "vit " + key + "=" + value.dump());
  }
  for (const auto& [key, value] : std::vector<std::pair<std::string, nlohmann::json>>{
           {"norm_num_groups", 0}, {"attention_head_dim", 0}, {"block_out_channels", {huge, huge}},
           {"cross_attention_dim", huge}, {"norm_eps", -1.0}}) {
    const std::string copy = dir.file("sdxl-" + key);
    fs::remove_all(copy);
    fs::copy(test::data("models/sdxl-tiny"), copy, fs::copy_options::recursive);
    nlohmann::json j = nlohmann::json::parse(read_file(copy + "/unet/config.json"));
    j[key] = value;
    write_file_atomically(copy + "/unet/config.json", j.dump());
    const test::Result r = test::run({"generate", "--model", copy, "--prompt", "a cat", "--steps", "1", "--output", dir.file("x.png")});
    expect_refused(r, 1, key, "unet " + key + "=" + value.dump());
    EXPECT_FALSE(fs::exists(dir.file("x.png")));
  }
}

TEST(HostileInputs, FloatsWhereIntegersBelongAreRefusedNeverCast) {
  // A float in a list of widths or ids was once cast to an integer (undefined for 1e300); the fuzzers found it.
  test::TempDir dir;
  const std::string sdxl = test::data("models/sdxl-tiny"), image = test::data("images/astronaut.png");
  struct Case { std::string model, file, key; nlohmann::json value; std::vector<std::string> args; };
  const std::vector<Case> cases = {
      {"sdxl-tiny", "vae/config.json", "block_out_channels", {1e300, 64}, {"generate", "--prompt", "a cat", "--steps", "1"}},
      {"sdxl-tiny", "vae/config.json", "latents_mean", {1e300, 0, 0, 0}, {"generate", "--prompt", "a cat", "--steps", "1"}},
      {"sdxl-tiny", "unet/config.json", "transformer_layers_per_block", {1.5, 1}, {"generate", "--prompt", "a cat", "--steps", "1"}},
      {"vit-tiny", "config.json", "patch_size", {1e300, 4}, {"embed", "--image", image}},
      {"vit-tiny", "preprocessor_config.json", "size", {{"height", 2.5e9}, {"width", 30}}, {"embed", "--image", image}},
      {"clip-tiny", "vocab.json", "!", 1e20, {"embed", "--text", "hi"}},
      {"clip-tiny", "vocab.json", "!", uint64_t(1) << 63, {"embed", "--text", "hi"}},
      {"bert-tiny", "tokenizer_config.json", "added_tokens_decoder", {{"1e300", {{"content", "[X]"}}}}, {"embed", "--text", "hi"}},
  };
  for (const auto& c : cases) {
    const std::string model = with_json_value(dir, c.model, c.file, c.key, c.value);
    std::vector<std::string> args = c.args;
    const std::string out = dir.file(args[0] == "generate" ? "out.png" : "out.npy");
    args.insert(args.begin() + 1, {"--model", model, "--output", out});
    expect_refused(test::run(args), 1, "'" + c.key + "'", c.file + " " + c.key + "=" + c.value.dump());
    EXPECT_FALSE(fs::exists(out));
  }
}

TEST(HostileInputs, NonFiniteModelOutputsAreAnErrorNamingTheStage) {
  // Weights that pass every shape check but hold inf: the embedding would be NaN, written as numbers.
  test::TempDir dir;
  const std::string copy = dir.file("bert-inf");
  fs::copy(test::data("models/bert-tiny"), copy, fs::copy_options::recursive);
  {
    const SafetensorsFile file = SafetensorsFile::open(copy + "/model.safetensors");
    std::vector<std::pair<std::string, Tensor>> tensors;
    for (const auto& info : file.tensors()) {
      Tensor t = file.get(info.name).clone();
      if (info.name.find("embeddings.LayerNorm.weight") != std::string::npos) t.data<float>()[0] = INFINITY;
      tensors.emplace_back(info.name, t);
    }
    write_safetensors(dir.file("model.safetensors"), tensors);
  }
  fs::rename(dir.file("model.safetensors"), copy + "/model.safetensors");
  expect_refused(test::run({"embed", "--model", copy, "--text", "hi", "--output", dir.file("e.npy")}), 1,
                 "non-finite values (NaN or inf) in its last hidden state", "inf weights");
  EXPECT_FALSE(fs::exists(dir.file("e.npy")));
}

TEST(HostileInputs, ThreadCountsAndImageSizesNoMachineRunsAreUsageErrors) {
  const std::string bert = test::data("models/bert-tiny"), sdxl = test::data("models/sdxl-tiny");
  expect_refused(test::run({"embed", "--model", bert, "--text", "hi", "--threads", "100000"}), 2, "at most 1024", "--threads");
  expect_refused(test::run({"embed", "--model", bert, "--text", "hi", "--threads", "99999999999999"}), 2, "at most 1024",
                 "--threads beyond int");
  for (const auto& size : std::vector<std::vector<std::string>>{{"--width", "8192", "--height", "8192"}, {"--width", "100000"}, {"--height", "100000"}}) {
    std::vector<std::string> args = {"generate", "--model", sdxl, "--prompt", "a cat", "--steps", "1", "--output", "/tmp/never.png"};
    args.insert(args.end(), size.begin(), size.end());
    expect_refused(test::run(args), 2, "at most 4096", size[0]);
  }
  expect_refused(test::run({"generate", "--model", sdxl, "--prompt", "a cat", "--guidance", "1e300", "--output", "/tmp/never.png"}),
                 2, "guidance", "--guidance 1e300");
  EXPECT_FALSE(fs::exists("/tmp/never.png"));
}

TEST(HostileInputs, LatentsThatAreNoNoiseDrawAreRefused) {
  test::TempDir dir;
  const std::string sdxl = test::data("models/sdxl-tiny");
  // The model's own latent shape, from a run that saves them.
  const test::Result ok = test::run({"generate", "--model", sdxl, "--prompt", "a cat", "--steps", "1", "--seed", "3",
                                     "--save-latents", dir.file("l.safetensors"), "--output", dir.file("ok.png")});
  ASSERT_EQ(ok.code, 0) << ok.err;
  const Tensor init = SafetensorsFile::open(dir.file("l.safetensors")).get("init_latents").clone();
  for (float bad : {1e30f, INFINITY, NAN}) {
    Tensor l = init.clone();
    l.data<float>()[5] = bad;
    write_safetensors(dir.file("bad.safetensors"), {{"latents", l}});
    expect_refused(test::run({"generate", "--model", sdxl, "--prompt", "a cat", "--steps", "1", "--latents",
                              dir.file("bad.safetensors"), "--output", dir.file("bad.png")}),
                   2, "at index 5", "latents " + std::to_string(bad));
    EXPECT_FALSE(fs::exists(dir.file("bad.png")));
  }
}

TEST(HostileInputs, ACommandWithSeveralOutputsWritesNoneUnlessItCanWriteAll) {
  test::TempDir dir;
  // /proc accepts no new file, even from root: the second output fails after the first is computed.
  const test::Result s = test::run({"similarity", "--model", test::data("models/clip-tiny"), "--text", "a", "--text", "b",
                                    "--image", test::data("images/astronaut.png"), "--output", dir.file("m.safetensors"),
                                    "--plot", "/proc/mmx-never.png"});
  EXPECT_EQ(s.code, 1) << s.err;
  EXPECT_FALSE(fs::exists(dir.file("m.safetensors"))) << "similarity left its matrix file behind";
  const test::Result g = test::run({"generate", "--model", test::data("models/sdxl-tiny"), "--prompt", "a cat", "--steps", "1",
                                    "--save-latents", dir.file("l.safetensors"), "--output", "/proc/mmx-never.png"});
  EXPECT_EQ(g.code, 1) << g.err;
  EXPECT_FALSE(fs::exists(dir.file("l.safetensors"))) << "generate left its latents behind";
  for (const auto& e : fs::directory_iterator(dir.path)) ADD_FAILURE() << "left behind: " << e.path();
}

// A 45-byte PNG whose tEXt chunk declares 2 GiB (issue 27's first case, and what a server gets as an
// upload): refused as truncated without allocating what the length field says (libpng did: 2.1 GB RSS).
TEST(HostileInputs, APngChunkDeclaringGigabytesCostsNoMemory) {
  auto be32 = [](uint32_t v) {
    return std::string{char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
  };
  auto crc = [](const std::string& typed) {  // CRC-32 of type + data, as PNG chunks carry it
    uint32_t c = 0xffffffffu;
    for (unsigned char b : typed) {
      c ^= b;
      for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
    }
    return ~c;
  };
  const std::string ihdr = "IHDR" + be32(1) + be32(1) + std::string("\x08\x02\x00\x00\x00", 5);
  std::string png = std::string("\x89PNG\r\n\x1a\n", 8) + be32(13) + ihdr + be32(crc(ihdr));
  png += be32(0x7fff0000u) + "tEXt" + be32(crc("tEXt"));  // 2 GiB declared, none present
  ASSERT_EQ(png.size(), 45u);
  rusage before{}, after{};
  getrusage(RUSAGE_SELF, &before);
  try {
    decode_image(png, "bomb.png");
    ADD_FAILURE() << "a truncated PNG decoded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bomb.png"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
  }
  getrusage(RUSAGE_SELF, &after);
  EXPECT_LT(after.ru_maxrss - before.ru_maxrss, 64 * 1024) << "peak RSS grew by " << (after.ru_maxrss - before.ru_maxrss) << " KiB";
}

// Devices, FIFOs and endless standard input (issue 27): refused by name at once, never read until memory
// runs out or waited on forever; a texts file has a size limit (--texts-limit) that names itself.
TEST(HostileInputs, DevicesFifosAndEndlessInputAreRefused) {
  const std::string bert = test::data("models/bert-tiny"), vit = test::data("models/vit-tiny");
  test::TempDir dir;
  const std::string fifo = dir.file("fifo");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  struct Case {
    std::vector<std::string> args;
    std::string named;
  };
  for (const Case& c : {Case{{"embed", "--model", bert, "--texts-file", "/dev/zero"}, "/dev/zero"},
                        Case{{"embed", "--model", vit, "--image", "/dev/zero"}, "/dev/zero"},
                        Case{{"embed", "--model", bert, "--texts-file", fifo}, fifo},
                        Case{{"embed", "--model", vit, "--image", fifo}, fifo},
                        Case{{"tokenize", "--model", bert, "--texts-file", "/dev/urandom"}, "/dev/urandom"}}) {
    std::string cmd = "timeout 30 " + test::quote(MMX_BINARY);
    for (const auto& a : c.args) cmd += " " + test::quote(a);
    cmd += " > " + test::quote(dir.file("out")) + " 2> " + test::quote(dir.file("err"));
    const int status = std::system(cmd.c_str());
    ASSERT_TRUE(WIFEXITED(status)) << cmd;
    EXPECT_EQ(WEXITSTATUS(status), 1) << cmd;  // 124 would be the timeout: a hang
    const std::string err = read_file(dir.file("err"));
    EXPECT_NE(err.find(c.named + ": not a regular file"), std::string::npos) << err;
    EXPECT_TRUE(read_file(dir.file("out")).empty());
  }
  // Standard input is a pipe by design; an endless one stops at the limit.
  const std::string piped = "timeout 30 " + test::quote(MMX_BINARY) + " embed --model " + test::quote(bert) +
                            " --texts-file - --texts-limit 100000 < /dev/zero > /dev/null 2> " + test::quote(dir.file("err"));
  const int status = std::system(piped.c_str());
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1);
  EXPECT_NE(read_file(dir.file("err")).find("more than 100000 bytes of texts; raise --texts-limit"), std::string::npos);
  write_file_atomically(dir.file("texts.txt"), "Cat with paint\nrock statue\n");
  const test::Result over = test::run({"embed", "--model", bert, "--texts-file", dir.file("texts.txt"), "--texts-limit", "10"});
  EXPECT_EQ(over.code, 1);
  EXPECT_NE(over.err.find("more than --texts-limit 10"), std::string::npos) << over.err;
  EXPECT_EQ(test::run({"embed", "--model", bert, "--texts-file", dir.file("texts.txt"), "--texts-limit", "100"}).code, 0);
}

// An added token's id far past the vocabulary (issue 27: 10^8 cost 3.1 GiB and exit 0; within the 2^24 id
// limit, 16 000 000 still cost 520 MB): refused naming the folder and the token, for both tokenizer kinds.
TEST(HostileInputs, AddedTokenIdsBeyondTheVocabularyAreRefused) {
  test::TempDir dir;
  const nlohmann::json huge = {{"content", "[HUGE]"}, {"lstrip", false}, {"normalized", false}, {"rstrip", false},
                               {"single_word", false}, {"special", true}};
  for (const char* model : {"bert-tiny", "clip-tiny"}) {
    const std::string copy = dir.file(std::string(model) + "-added");
    fs::copy(test::data(std::string("models/") + model), copy, fs::copy_options::recursive);
    nlohmann::json j = nlohmann::json::parse(read_file(copy + "/tokenizer_config.json"));
    j["added_tokens_decoder"]["16000000"] = huge;
    // The CLIP folder's vocabulary files are links to one shared copy: write beside them, not through them.
    fs::remove(copy + "/tokenizer_config.json");
    write_file_atomically(copy + "/tokenizer_config.json", j.dump());
    rusage before{}, after{};
    getrusage(RUSAGE_CHILDREN, &before);
    expect_refused(test::run({"tokenize", "--model", copy, "--text", "a cat"}), 1, "added token '[HUGE]' has id 16000000", model);
    getrusage(RUSAGE_CHILDREN, &after);
    EXPECT_LT(after.ru_maxrss, 300 * 1024) << model << ": peak RSS of the command " << after.ru_maxrss << " KiB";
  }
}

// Allocations a file drives are checked against what the file holds before they are made (issue 27):
// config shapes the checkpoint does not have (hidden_size 64 000 beside 32-wide tensors cost 24 GiB and
// the OOM killer; vocab_size 16 000 000 and 1024 layers hundreds of MB), a 5 MB pickle of one-byte
// opcodes (1 GiB). Each runs under a 1 GiB address-space cap and must stay under 300 MB of peak RSS.
TEST(HostileInputs, AllocationsAFileDrivesAreBoundedByWhatItHolds) {
  test::TempDir dir;
  struct Case {
    std::string model, says;
  };
  std::vector<Case> cases = {
      {with_json_value(dir, "bert-tiny", "config.json", "hidden_size", 64000), "config implies [30522, 64000]"},
      {with_json_value(dir, "bert-tiny", "config.json", "vocab_size", 16000000), "config implies [16000000, 32]"},
      {with_json_value(dir, "bert-tiny", "config.json", "intermediate_size", 16000000), "config implies [16000000, 32]"},
      {with_json_value(dir, "bert-tiny", "config.json", "num_hidden_layers", 1024), "missing 16352 tensor(s)"},  // 1022 layers × 16
      {with_json_value(dir, "vit-tiny", "config.json", "image_size", 8192), "config implies"},
  };
  // A pytorch_model.bin whose pickle is five million EMPTY_LIST opcodes.
  const std::string pickled = dir.file("bert-pickle");
  fs::create_directories(pickled);
  for (const char* f : {"config.json", "vocab.txt", "tokenizer_config.json"})
    fs::copy(test::data(std::string("models/bert-tiny/") + f), pickled + "/" + f);
  const std::string lists = "\x80\x02" + std::string(5000000, ']') + ".";
  write_file_atomically(pickled + "/pytorch_model.bin", test::zip_archive({{"archive/data.pkl", lists, std::nullopt, std::nullopt}}));
  cases.push_back({pickled, "more than 1048576 values"});
  for (const Case& c : cases) {
    const bool image = c.model.find("vit") != std::string::npos;
    rusage before{}, after{};
    getrusage(RUSAGE_CHILDREN, &before);
    const test::Result r =
        test::run({"embed", "--model", c.model, image ? "--image" : "--text",
                   image ? test::data("images/horse.png") : std::string("hi")}, 1024);
    getrusage(RUSAGE_CHILDREN, &after);
    expect_refused(r, 1, c.says, c.model);
    EXPECT_EQ(r.err.find("std::bad_alloc"), std::string::npos) << r.err;
    EXPECT_LT(after.ru_maxrss, 300 * 1024) << c.model << ": peak RSS of the command " << after.ru_maxrss << " KiB";
  }
}

// One exit-code rule (issue 27): text typed on the command line that is not UTF-8 is the user's error
// (2, naming the flag, before any model loads); the same bytes in a file are the file's (1, naming it).
TEST(HostileInputs, InvalidUtf8IsTwoWhenTypedAndOneWhenAFileHoldsIt) {
  const std::string bert = test::data("models/bert-tiny"), clip = test::data("models/clip-tiny"),
                    sdxl = test::data("models/sdxl-tiny"), horse = test::data("images/horse.png");
  const std::string bad = "a\xff" "b";
  struct Case {
    std::vector<std::string> args;
    std::string says;
  };
  const std::vector<Case> typed = {
      {{"embed", "--model", bert, "--text", "ok", "--text", bad}, "--text number 2 is not valid UTF-8 (byte 2)"},
      {{"tokenize", "--model", bert, "--text", bad}, "--text number 1 is not valid UTF-8"},
      {{"generate", "--model", sdxl, "--prompt", bad}, "--prompt is not valid UTF-8"},
      {{"generate", "--model", sdxl, "--prompt", "a cat", "--negative-prompt", bad}, "--negative-prompt is not valid UTF-8"},
      {{"similarity", "--model", clip, "--text", bad, "--image", horse}, "--text number 1 is not valid UTF-8"},
      {{"similarity", "--model", clip, "--text", "a", "--image", horse, "--title", bad}, "--title is not valid UTF-8"},
      {{"classify", "--model", clip, "--image", horse, "--labels", bad}, "--labels is not valid UTF-8"},
      {{"classify", "--model", clip, "--image", horse, "--labels", "cat", "--template", bad}, "--template is not valid UTF-8"},
      {{"lab", "--caption", bad}, "--caption number 1 is not valid UTF-8"},
  };
  for (const Case& c : typed) expect_refused(test::run(c.args), 2, c.says, c.args[0] + " " + c.says);
  test::TempDir dir;
  write_file_atomically(dir.file("texts.txt"), "fine\n" + bad + "\n");
  for (const std::string command : {"embed", "tokenize"})
    expect_refused(test::run({command, "--model", bert, "--texts-file", dir.file("texts.txt")}), 1,
                   dir.file("texts.txt") + ": line 2 is not valid UTF-8", command + " --texts-file");
}
