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
#include "unit/torch_zip.hpp"

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

// The hostile archives of the bad-input campaign, one per class, made here (torch_zip.hpp): each is an
// error naming the file, never a crash, a wrapped size read as another tensor, or a stack overflow.
namespace {
std::string refusal(const std::string& path) {
  try {
    read_torch_state_dict(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}
std::string floats(int n) { return std::string(size_t(n) * 4, '\0'); }
}  // namespace

TEST(TorchCheckpoint, AHandMadeArchiveReadsBack) {  // the helper itself: what the cases below bend
  test::TempDir dir;
  std::string data;
  for (float v : {1.f, 2.f, 3.f, 4.f}) data.append(reinterpret_cast<const char*>(&v), 4);
  write_file_atomically(dir.file("ok.bin"), test::torch_archive(test::Pickle::state_dict("w", "FloatStorage", 4, 0, {2, 2}, {1, 2}), data));
  const auto got = read_torch_state_dict(dir.file("ok.bin"));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].first, "w");
  ASSERT_EQ(got[0].second.shape(), (Shape{2, 2}));
  EXPECT_EQ(got[0].second.data<float>()[1], 3.f);  // the transposed view, gathered: [[1, 3], [2, 4]]
}

TEST(TorchCheckpoint, Zip64FieldsThatWrapAreRefused) {
  test::TempDir dir;
  const std::string pickle = test::Pickle::state_dict("w", "FloatStorage", 4, 0, {4}, {1}).bytes;
  struct Case { const char* name; std::string archive; const char* says; };
  const std::vector<Case> cases = {
      {"size.bin", test::zip_archive({{"archive/data.pkl", pickle, {}, {}}, {"archive/data/0", floats(4), ~uint64_t(0) - 7, {}}}),
       "runs past the end"},
      {"offset.bin", test::zip_archive({{"archive/data.pkl", pickle, {}, {}}, {"archive/data/0", floats(4), {}, ~uint64_t(0) - 20}}),
       "damaged local header"},
      {"end.bin", test::zip_archive({{"archive/data.pkl", pickle, {}, {}}}, ~uint64_t(0) - 30), "damaged zip64 end record"},
  };
  for (const auto& c : cases) {
    write_file_atomically(dir.file(c.name), c.archive);
    const std::string why = refusal(dir.file(c.name));
    EXPECT_NE(why.find(c.says), std::string::npos) << c.name << ": " << why;
  }
}

TEST(TorchCheckpoint, StorageAndViewSizesThatOverflowAreRefused) {
  test::TempDir dir;
  // numel × 4 bytes wraps to 0: the storage would look empty and pass as another tensor.
  write_file_atomically(dir.file("wrap.bin"), test::torch_archive(test::Pickle::state_dict("w", "FloatStorage", int64_t(1) << 62, 0, {0}, {1}), ""));
  EXPECT_NE(refusal(dir.file("wrap.bin")).find("overflows"), std::string::npos) << refusal(dir.file("wrap.bin"));
  // 2³¹ × 2³¹ elements of stride 0 over a 32-value storage: an expanded view asking for 2⁶⁴ bytes.
  write_file_atomically(dir.file("expand.bin"), test::torch_archive(test::Pickle::state_dict("w", "FloatStorage", 32, 0, {int64_t(1) << 31, int64_t(1) << 31}, {0, 0}), floats(32)));
  EXPECT_NE(refusal(dir.file("expand.bin")).find("more than its storage"), std::string::npos) << refusal(dir.file("expand.bin"));
  // Sizes whose product overflows int64, and a stride that carries the last element past 2⁶³.
  write_file_atomically(dir.file("numel.bin"), test::torch_archive(test::Pickle::state_dict("w", "FloatStorage", 32, 0, {int64_t(1) << 40, int64_t(1) << 40}, {1, 1}), floats(32)));
  EXPECT_NE(refusal(dir.file("numel.bin")).find("overflows"), std::string::npos) << refusal(dir.file("numel.bin"));
  write_file_atomically(dir.file("stride.bin"), test::torch_archive(test::Pickle::state_dict("w", "FloatStorage", 32, 0, {3}, {int64_t(1) << 62}), floats(32)));
  EXPECT_NE(refusal(dir.file("stride.bin")).find("overflows"), std::string::npos) << refusal(dir.file("stride.bin"));
}

TEST(TorchCheckpoint, DeepAndHugePicklesAreRefusedNotOverflowed) {
  test::TempDir dir;
  auto nested = [](char open, char close_op, int depth) {  // 300 000 nested tuples / lists
    test::Pickle p;
    for (int i = 0; i < depth; ++i) p.op(open);
    if (close_op) for (int i = 0; i < depth; ++i) p.op(close_op);
    return p.op('.');
  };
  test::Pickle tuples;
  tuples.op(')');
  for (int i = 0; i < 300000; ++i) tuples.op('\x85');  // TUPLE1 around the previous one
  tuples.op('.');
  test::Pickle lists;
  lists.op(']');
  for (int i = 0; i < 300000; ++i) lists.op(']').op('\x94').op('q').op('\x00');  // new lists, each memoised
  lists.op('.');
  test::Pickle cycle;  // a list appended to itself again and again through the memo
  cycle.op(']').op('q').op('\x01');
  for (int i = 0; i < 1000; ++i) cycle.op('h').op('\x01').op('a');
  cycle.op('.');
  const std::vector<std::pair<std::string, test::Pickle>> cases = {
      {"tuples.bin", tuples}, {"marks.bin", nested('(', 0, 300000)}, {"lists.bin", lists}, {"cycle.bin", cycle}};
  for (const auto& [name, pickle] : cases) {
    write_file_atomically(dir.file(name), test::torch_archive(pickle, ""));
    const std::string why = refusal(dir.file(name));
    EXPECT_TRUE(why.find("deeper than") != std::string::npos || why.find("holds no dict") != std::string::npos)
        << name << ": " << why;
  }
}
