// Decoding and Hugging Face preprocessing against the Pillow/transformers fixtures
// (tests/data/preprocess/*_pixel_values.safetensors): pixel_values must be bit-identical.
#include <filesystem>
#include <fstream>

#include "mmx/files.hpp"
#include "mmx/image_processor.hpp"
#include "test_util.hpp"

using namespace mmx;

namespace {

uint32_t crc32(const std::string& bytes) {  // PNG's chunk CRC (ISO 3309)
  uint32_t crc = 0xffffffffu;
  for (unsigned char b : bytes) {
    crc ^= b;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

void check_processor(const std::string& which) {
  const auto config = ImageProcessorConfig::load(test::data("preprocess/" + which + "/preprocessor_config.json"), "");
  const auto expected = SafetensorsFile::open(test::data("preprocess/" + which + "_pixel_values.safetensors"));
  int checked = 0;
  for (const auto& t : expected.tensors()) {
    if (t.name.find(':') != std::string::npos) continue;  // load_image variant: EXIF applied first
    const Tensor got = preprocess_image(load_image(test::data("images/" + t.name)), config);
    test::expect_close(which + " " + t.name, got, expected.get(t.name), 0.0);
    ++checked;
  }
  EXPECT_GE(checked, 6);
}

}  // namespace

TEST(Preprocess, VitPixelValuesAreBitIdentical) { check_processor("vit"); }
TEST(Preprocess, ClipPixelValuesAreBitIdentical) { check_processor("clip"); }

TEST(Preprocess, CurrentAndLegacyConfigFormatsAgree) {
  for (const char* which : {"vit", "clip"}) {
    const std::string model = std::string(which) == "vit" ? "vit-tiny" : "";
    if (model.empty()) continue;
    const auto legacy = ImageProcessorConfig::load(test::data(std::string("preprocess/") + which + "/preprocessor_config.json"), "");
    const auto current = ImageProcessorConfig::load(test::data("models/" + model + "/preprocessor_config.json"), "");
    const Image image = load_image(test::data("images/chelsea.png"));
    test::expect_close(std::string(which) + " legacy vs current config", preprocess_image(image, current),
                       preprocess_image(image, legacy), 0.0);
  }
}

TEST(Decode, ModesConvertLikePillow) {
  const Image gray = load_image(test::data("images/camera.png"));
  EXPECT_EQ(gray.width, 512);
  for (size_t i = 0; i < gray.rgb.size(); i += 3) {
    ASSERT_EQ(gray.rgb[i], gray.rgb[i + 1]);
    ASSERT_EQ(gray.rgb[i], gray.rgb[i + 2]);
  }
  const Image pixel = load_image(test::data("images/pixel_1x1.png"));
  ASSERT_EQ(pixel.rgb.size(), 3u);
  EXPECT_EQ(pixel.rgb[0], 200);  // (200, 30, 90), fixtures README
  EXPECT_EQ(pixel.rgb[1], 30);
  EXPECT_EQ(pixel.rgb[2], 90);
  // 16-bit grey is Pillow mode "I": convert("RGB") clips to 255 rather than scaling.
  const Image ramp = load_image(test::data("images/gray16_64x48.png"));
  EXPECT_EQ(ramp.width, 64);
  EXPECT_EQ(ramp.height, 48);
  EXPECT_EQ(ramp.rgb.back(), 255);
  const Image rotated = load_image(test::data("images/rocket_exif_rot90.jpg"));  // EXIF not applied
  EXPECT_EQ(rotated.width, 640);
  EXPECT_EQ(rotated.height, 427);
}

TEST(Decode, BadFilesAreClearErrors) {
  test::TempDir dir;
  std::ofstream(dir.file("empty.png")).close();
  std::ofstream(dir.file("text.jpg")) << "this is not a picture\n";
  std::ofstream(dir.file("image.gif"), std::ios::binary) << "GIF89a\x01\x00\x01\x00";
  // A PNG header claiming 20000×20000: refused from the header alone.
  const std::string png = read_file(test::data("images/pixel_1x1.png"));
  std::string bomb = png.substr(0, 33);
  for (int i = 0; i < 2; ++i) {  // width and height, big-endian, at offsets 16 and 20 of the IHDR
    const uint32_t v = 20000;
    for (int b = 0; b < 4; ++b) bomb[16 + i * 4 + b] = static_cast<char>((v >> (24 - 8 * b)) & 0xff);
  }
  const uint32_t crc = crc32(bomb.substr(12, 17));  // chunk type + data of IHDR
  for (int b = 0; b < 4; ++b) bomb[29 + b] = static_cast<char>((crc >> (24 - 8 * b)) & 0xff);
  std::ofstream(dir.file("bomb.png"), std::ios::binary) << bomb;
  const std::pair<std::string, std::string> cases[] = {
      {test::data("images/truncated.jpg"), "truncated"},
      {dir.file("empty.png"), "empty file"},
      {dir.file("text.jpg"), "unrecognised format"},
      {dir.file("image.gif"), "cannot decode GIF"},
      {dir.file("bomb.png"), "exceeds the limit"},
      {dir.file("missing.png"), "cannot open"},
  };
  for (const auto& [path, needle] : cases) {
    try {
      load_image(path);
      ADD_FAILURE() << "decoded " << path;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  }
}

TEST(Preprocess, ConfigFormsFollowGetSizeDict) {
  test::TempDir dir;
  auto load = [&](const std::string& json) {
    std::ofstream(dir.file("p.json")) << json;
    return ImageProcessorConfig::load(dir.file("p.json"), "");
  };
  // An int is a square for ViT, the shortest edge for CLIP; crop_size ints are squares.
  auto vit = load(R"({"image_processor_type": "ViTImageProcessor", "size": 384, "resample": 3})");
  EXPECT_EQ(vit.height.value_or(0), 384);
  EXPECT_EQ(vit.width.value_or(0), 384);
  EXPECT_EQ(vit.resample, Resample::Bicubic);
  auto clip = load(R"({"feature_extractor_type": "CLIPFeatureExtractor", "size": 336, "crop_size": 336})");
  EXPECT_EQ(clip.shortest_edge.value_or(0), 336);
  EXPECT_FALSE(clip.height.has_value());
  EXPECT_EQ(clip.crop_height, 336);
  EXPECT_TRUE(clip.do_center_crop);
  auto pair = load(R"({"image_processor_type": "ViTImageProcessor", "size": [96, 128]})");
  EXPECT_EQ(pair.height.value_or(0), 96);
  EXPECT_EQ(pair.width.value_or(0), 128);
  // A non-square ViT size gives that many rows and columns.
  const Tensor t = preprocess_image(load_image(test::data("images/chelsea.png")), pair);
  EXPECT_EQ(shape_str(t.shape()), "[3, 96, 128]");
  for (const char* bad : {R"({"size": "big"})", R"({"size": {"width": 3}})", R"({"resample": 9})",
                          R"({"image_std": [0.5, 0, 0.5]})", R"({"image_processor_type": "DetrImageProcessor"})"}) {
    try {
      load(bad);
      ADD_FAILURE() << "accepted " << bad;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("p.json"), std::string::npos) << e.what();
    }
  }
}

TEST(Resize, EveryFilterKeepsAConstantImageConstant) {
  // Pillow normalises each output's weights to sum to one (in fixed point), so a flat image stays flat
  // under every filter, up- or down-scaling, as it does in Pillow.
  Image flat;
  flat.width = 37;
  flat.height = 23;
  flat.rgb.assign(37 * 23 * 3, 0);
  for (size_t i = 0; i < flat.rgb.size(); i += 3) {
    flat.rgb[i] = 200;
    flat.rgb[i + 1] = 17;
    flat.rgb[i + 2] = 99;
  }
  for (Resample r : {Resample::Nearest, Resample::Lanczos, Resample::Bilinear, Resample::Bicubic, Resample::Box,
                     Resample::Hamming})
    for (auto [w, h] : {std::pair{11, 7}, {80, 50}, {37, 5}, {3, 23}}) {
      const Image out = resize(flat, w, h, r);
      ASSERT_EQ(out.rgb.size(), size_t(w * h * 3));
      for (size_t i = 0; i < out.rgb.size(); i += 3)
        ASSERT_TRUE(out.rgb[i] == 200 && out.rgb[i + 1] == 17 && out.rgb[i + 2] == 99)
            << "filter " << static_cast<int>(r) << " to " << w << "x" << h;
    }
}
