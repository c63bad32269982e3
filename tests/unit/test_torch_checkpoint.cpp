// PyTorch .bin checkpoints through the restricted unpickler (fixtures: tools/make_torch_bin_fixtures.py):
// every storage type and view a state dict uses equals torch's own values, a model saved as .bin runs
// with the same outputs as its safetensors twin, and pickles that would run code or are damaged are refused.
#include <filesystem>
#include <random>

#include "io/checkpoint.hpp"
#include "io/torch_checkpoint.hpp"
#include "mmx/embed.hpp"
#include "mmx/error.hpp"
#include "mmx/files.hpp"
#include "test_util.hpp"

using namespace mmx;

TEST(TorchCheckpoint, EveryStorageTypeAndViewIsTorchsValue) {
  const auto got = read_torch_state_dict(test::data("torch/views.bin"));
  const auto expected = SafetensorsFile::open(test::data("torch/views.safetensors"));
  ASSERT_EQ(got.size(), expected.tensors().size());
  const char* order[] = {"f32", "row_view", "transposed", "f16", "bf16", "f64", "i64", "scalar"};
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].first, order[i]);  // file order
    const Tensor& t = got[i].second;
    const Tensor want = expected.get(got[i].first);
    ASSERT_EQ(t.shape(), want.shape()) << got[i].first;
    Tensor as_f32 = t;
    if (t.dtype() == DType::I64) {
      as_f32 = Tensor::empty(t.shape());
      for (int64_t k = 0; k < t.numel(); ++k) as_f32.data<float>()[k] = static_cast<float>(t.data<int64_t>()[k]);
    } else {
      as_f32 = t.to(DType::F32);
    }
    test::expect_close(got[i].first, as_f32, want, 0.0);
  }
  EXPECT_EQ(got[3].second.dtype(), DType::F16);
  EXPECT_EQ(got[4].second.dtype(), DType::BF16);
}

TEST(TorchCheckpoint, AModelSavedAsBinRunsLikeItsSafetensorsTwin) {
  EmbedOptions options;
  const EmbedResult want = TextEmbedder::load(test::data("models/bert-tiny"), test::placement())->embed({"hello world", "a cat"}, options);
  const EmbedResult got = TextEmbedder::load(test::data("models/bert-tiny-bin"), test::placement())->embed({"hello world", "a cat"}, options);
  test::expect_close("bert-tiny from pytorch_model.bin", got.embeddings, want.embeddings, 0.0);
}

TEST(TorchCheckpoint, CodeInAPickleAndDamagedArchivesAreRefused) {
  auto message = [](const std::string& path) {
    try {
      read_torch_state_dict(path);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const std::string evil = message(test::data("torch/evil.bin"));
  EXPECT_NE(evil.find("refusing to run code from a pickle: global 'posix.system' is not part of a state dict"),
            std::string::npos) << evil;
  test::TempDir dir;
  const std::string bytes = read_file(test::data("torch/views.bin"));
  write_file_atomically(dir.file("cut.bin"), bytes.substr(0, bytes.size() / 2));
  EXPECT_NE(message(dir.file("cut.bin")).find("not a zip archive"), std::string::npos) << message(dir.file("cut.bin"));
  write_file_atomically(dir.file("text.bin"), "just some text, not an archive at all");
  EXPECT_NE(message(dir.file("text.bin")).find("not a zip archive"), std::string::npos);
  write_file_atomically(dir.file("empty.bin"), "");
  EXPECT_NE(message(dir.file("empty.bin")).find("not a zip archive"), std::string::npos) << message(dir.file("empty.bin"));
  // A folder with the .bin cut short: the model load names the file.
  std::filesystem::create_directory(dir.file("model"));
  for (const char* f : {"config.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"})
    std::filesystem::copy_file(test::data(std::string("models/bert-tiny-bin/") + f), dir.file(std::string("model/") + f));
  const std::string weights = read_file(test::data("models/bert-tiny-bin/pytorch_model.bin"));
  write_file_atomically(dir.file("model/pytorch_model.bin"), weights.substr(0, weights.size() - 100));
  try {
    TextEmbedder::load(dir.file("model"), test::placement());
    FAIL() << "loaded a truncated pytorch_model.bin";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("pytorch_model.bin"), std::string::npos) << e.what();
  }
}

// Damaged bytes anywhere (pickle, zip headers, data) give a value or a clear error, never a crash
// (the ASan build runs this too).
TEST(TorchCheckpoint, CorruptedArchivesNeverCrash) {
  const std::string bytes = read_file(test::data("torch/views.bin"));
  test::TempDir dir;
  std::mt19937 rng(11);
  int refused = 0;
  for (int trial = 0; trial < 300; ++trial) {
    std::string damaged = bytes;
    for (int k = 0; k < 1 + trial % 4; ++k) damaged[rng() % damaged.size()] = static_cast<char>(rng());
    write_file_atomically(dir.file("d.bin"), damaged);
    try {
      read_torch_state_dict(dir.file("d.bin"));
    } catch (const Error&) {
      ++refused;
    }
  }
  std::printf("  %d of 300 damaged archives refused with an error, the rest read\n", refused);
  EXPECT_GT(refused, 0);
}
