// Every validation rule of the safetensors reader, the sharded index, and the writer.
#include <cstring>
#include <fstream>

#include "mmx/files.hpp"

#include "io/checkpoint.hpp"
#include "models/weights.hpp"
#include "io/json_config.hpp"
#include "test_util.hpp"

using namespace mmx;
using mmx::test::TempDir;

namespace {

// header JSON (as text) + raw data bytes → file bytes, header padded like the reference writer.
std::string make_file(std::string header, const std::string& data, bool pad = true) {
  if (pad) header.append((8 - header.size() % 8) % 8, ' ');
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((uint64_t(header.size()) >> (8 * i)) & 0xff);
  return bytes + header + data;
}

std::string write(const TempDir& dir, const std::string& name, const std::string& bytes) {
  const std::string path = dir.file(name);
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

// Opens a file that must be rejected; returns the message so a test can check it names the fault.
std::string rejection(const std::string& bytes) {
  TempDir dir;
  const std::string path = write(dir, "bad.safetensors", bytes);
  try {
    SafetensorsFile::open(path);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << "message must name the file: " << e.what();
    return e.what();
  }
  ADD_FAILURE() << "accepted a corrupt file";
  return {};
}

const std::string k8Bytes(8, '\x01');

}  // namespace

TEST(Safetensors, ReadsAValidFileZeroCopy) {
  TempDir dir;
  const std::string path = write(dir, "ok.safetensors",
      make_file(R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", k8Bytes));
  const auto f = SafetensorsFile::open(path);
  ASSERT_EQ(f.tensors().size(), 1u);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  const Tensor a = f.get("a");
  EXPECT_EQ(shape_str(a.shape()), "[2]");
  EXPECT_EQ(a.dtype(), DType::F32);
}

TEST(Safetensors, RejectsTooShortFile) { EXPECT_NE(rejection("abc").find("shorter than"), std::string::npos); }

TEST(Safetensors, RejectsHeaderPastEndOfFile) {
  std::string bytes = make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", k8Bytes);
  bytes.resize(20);  // truncated inside the header
  EXPECT_NE(rejection(bytes).find("runs past the end"), std::string::npos);
}

TEST(Safetensors, RejectsHugeHeaderLength) {
  std::string bytes(16, '\0');
  bytes[7] = '\x7f';
  EXPECT_NE(rejection(bytes).find("100 MiB"), std::string::npos);
}

TEST(Safetensors, RejectsMalformedJson) {
  EXPECT_NE(rejection(make_file(R"({"a":{"dtype":"F32",)", "")).find("not valid JSON"), std::string::npos);
}

// The header is one JSON object padded with spaces, as the format's reference reader (serde_json, which
// also needs '{' first) takes it: a byte-order mark before it or NULs after it are refused (issue 27); the
// reader and writer's own space padding is fine.
TEST(Safetensors, HeaderIsOneObjectPaddedOnlyWithSpaces) {
  const std::string h = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  EXPECT_NE(rejection(make_file("\xEF\xBB\xBF" + h, k8Bytes, false)).find("does not start with '{'"), std::string::npos);
  EXPECT_NE(rejection(make_file(h + std::string(8, '\0'), k8Bytes, false)).find("bytes after its closing '}'"), std::string::npos);
  TempDir dir;
  for (const std::string& padded : {h + "        ", h + "\n"})
    EXPECT_EQ(SafetensorsFile::open(write(dir, "ok.safetensors", make_file(padded, k8Bytes, false))).get("a").numel(), 2);
}

TEST(Safetensors, RejectsOutOfRangeNumbers) {  // found by tests/fuzz/fuzz_config: nlohmann throws out_of_range
  EXPECT_NE(rejection(make_file(R"({"a":{"dtype":"F32","shape":[1e512],"data_offsets":[0,8]}})", k8Bytes))
                .find("not valid JSON"), std::string::npos);
  test::TempDir dir;
  std::ofstream(dir.file("config.json")) << R"({"model_type": "bert", "hidden_size": 1e512})";
  try {
    JsonObject::load(dir.file("config.json"));
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("invalid JSON"), std::string::npos) << e.what();
  }
}

TEST(Safetensors, RejectsNonObjectHeader) {
  EXPECT_NE(rejection(make_file("[1,2,3]", "")).find("must be a JSON object"), std::string::npos);
}

TEST(Safetensors, RejectsUnknownDtype) {
  EXPECT_NE(rejection(make_file(R"({"a":{"dtype":"F31","shape":[2],"data_offsets":[0,8]}})", k8Bytes))
                .find("unknown dtype 'F31'"), std::string::npos);
}

TEST(Safetensors, RejectsSizeMismatch) {
  EXPECT_NE(rejection(make_file(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", k8Bytes))
                .find("expected 12"), std::string::npos);
}

TEST(Safetensors, RejectsRangeOutsideData) {
  const std::string msg = rejection(make_file(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", k8Bytes));
  EXPECT_NE(msg.find("run past the data section"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'a'"), std::string::npos) << msg;
}

TEST(Safetensors, RejectsOverlap) {
  EXPECT_NE(rejection(make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", k8Bytes))
                .find("overlap"), std::string::npos);
}

TEST(Safetensors, RejectsGapsAndTrailingBytes) {
  EXPECT_NE(rejection(make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", k8Bytes)).find("gap"),
            std::string::npos);
  EXPECT_NE(rejection(make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", k8Bytes))
                .find("belong to no tensor"), std::string::npos);
}

TEST(Safetensors, RejectsDuplicateNames) {
  EXPECT_NE(rejection(make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                R"("a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", k8Bytes))
                .find("appears twice"), std::string::npos);
}

TEST(Safetensors, RejectsBadShapesAndOffsets) {
  EXPECT_NE(rejection(make_file(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", k8Bytes))
                .find("non-negative"), std::string::npos);
  EXPECT_NE(rejection(make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", k8Bytes))
                .find("end before they begin"), std::string::npos);
  EXPECT_NE(rejection(make_file(R"({"a":{"dtype":"F32","shape":[2]}})", k8Bytes)).find("missing 'data_offsets'"),
            std::string::npos);
  EXPECT_NE(rejection(make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", k8Bytes))
                .find("[begin, end]"), std::string::npos);
  // 2^62 + 2 F32 values are 2^64 + 8 bytes: wrapped, that would be the 8 bytes the file holds (issue 27).
  const std::string wraps = rejection(make_file(R"({"a":{"dtype":"F32","shape":[4611686018427387906],"data_offsets":[0,8]}})", k8Bytes));
  EXPECT_NE(wraps.find("'a'"), std::string::npos) << wraps;
  EXPECT_TRUE(wraps.find("overflow") != std::string::npos || wraps.find("too large") != std::string::npos) << wraps;
  // Two dimensions whose product wraps to 2 values (2^63 · 2^1 · ... ): refused the same way.
  const std::string product = rejection(make_file(R"({"a":{"dtype":"F32","shape":[9223372036854775808,2],"data_offsets":[0,8]}})", k8Bytes));
  EXPECT_TRUE(product.find("overflow") != std::string::npos || product.find("too large") != std::string::npos) << product;
}

TEST(Safetensors, RejectsTruncatedRealCheckpoint) {
  const std::string bytes = mmx::read_file(test::data("models/bert-tiny/model.safetensors"));
  const std::string msg = rejection(bytes.substr(0, bytes.size() / 2));
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
}

TEST(Safetensors, WriterRoundTripsAndIsReadableByTheReader) {
  TempDir dir;
  const Tensor f = Tensor::from_vector(std::vector<float>{1.5f, -2.f, 3.25f}, {3, 1});
  const Tensor i = Tensor::from_vector(std::vector<int64_t>{7, -8}, {2});
  write_safetensors(dir.file("out.safetensors"), {{"floats", f}, {"ints", i}}, {{"k", "v"}});
  const auto file = SafetensorsFile::open(dir.file("out.safetensors"));
  EXPECT_EQ(file.metadata().at("k"), "v");
  EXPECT_EQ(file.get("floats").data<float>()[2], 3.25f);
  EXPECT_EQ(file.get("ints").data<int64_t>()[1], -8);
  EXPECT_EQ(shape_str(file.get("floats").shape()), "[3, 1]");
  EXPECT_FALSE(std::filesystem::exists(dir.file("out.safetensors.tmp-" + std::to_string(getpid()))));
}

TEST(Checkpoint, ShardedIndexMatchesSingleFile) {
  const auto single = Checkpoint::open(test::data("models/bert-tiny"));
  const auto sharded = Checkpoint::open(test::data("models/bert-tiny-sharded"));
  ASSERT_EQ(single.names(), sharded.names());
  for (const auto& name : single.names()) {
    const Tensor a = single.get(name), b = sharded.get(name);
    ASSERT_EQ(a.nbytes(), b.nbytes()) << name;
    ASSERT_EQ(std::memcmp(a.raw(), b.raw(), a.nbytes()), 0) << name;
  }
}

TEST(Checkpoint, RejectsBadIndexes) {
  TempDir dir;
  auto expect_error = [&](const std::string& index, const std::string& needle) {
    write(dir, "model.safetensors.index.json", index);
    try {
      Checkpoint::open(dir.path.string());
      ADD_FAILURE() << "accepted index " << index;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  write(dir, "shard.safetensors", make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", k8Bytes));
  expect_error(R"({"metadata":{}})", "'weight_map' is missing");
  expect_error(R"({"weight_map":{"a":"missing.safetensors"}})", "does not exist");
  expect_error(R"({"weight_map":{"a":"../etc/passwd"}})", "not a file name in this folder");
  expect_error(R"({"weight_map":{"b":"shard.safetensors"}})", "does not hold it");
  expect_error(R"({"weight_map":)", "invalid JSON");
  write(dir, "model.safetensors.index.json", R"({"weight_map":{"a":"shard.safetensors"}})");
  EXPECT_EQ(Checkpoint::open(dir.path.string()).names().size(), 1u);
}

TEST(Checkpoint, FolderWithoutWeightsIsAClearError) {
  TempDir dir;
  try {
    Checkpoint::open(dir.path.string());
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no model.safetensors"), std::string::npos);
  }
}

// HalfWeights: the small models widen F16 matrices at load; SDXL keeps them as stored, in the mapping.
TEST(WeightLoader, HalfPrecisionMatricesWidenedOrKeptAsStored) {
  TempDir dir;
  const Tensor w = Tensor::from_vector(std::vector<float>{0.5f, -1.25f, 3.0f, 0.1f, 2.0f, -0.75f}, {2, 3});
  write_safetensors(dir.file("m.safetensors"), {{"w", w.to(DType::F16)}, {"b", Tensor::zeros({2})}});
  const Checkpoint checkpoint = Checkpoint::open(dir.file("m.safetensors"));
  const Tensor stored = SafetensorsFile::open(dir.file("m.safetensors")).get("w");
  for (HalfWeights half : {HalfWeights::Widen, HalfWeights::AsStored}) {
    WeightLoader loader(checkpoint, test::placement(), half);
    const Tensor m = loader.get_matrix("w", {2, 3});
    EXPECT_EQ(m.dtype(), half == HalfWeights::AsStored ? DType::F16 : DType::F32);
    test::expect_close("matrix", m.to(DType::F32), stored.to(DType::F32), 0.0);
    EXPECT_EQ(loader.get("b", {2}).dtype(), DType::F32);  // vectors (biases, norms) are always F32
    loader.finish("test model");
  }
}
