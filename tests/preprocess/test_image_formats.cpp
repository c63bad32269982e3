// WebP, GIF, TIFF and BMP decoding and EXIF orientation against what Pillow 9.4 decodes from the same files
// (tests/data/generator/make_image_formats.py wrote both): every pixel equal.
#include <gtest/gtest.h>

#include <filesystem>

#include "mmx/error.hpp"
#include "mmx/files.hpp"
#include "mmx/image.hpp"
#include "test_util.hpp"

namespace mmx {
namespace {

std::vector<std::string> format_files() {
  std::vector<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(test::data("images/formats"))) {
    const std::string name = entry.path().filename().string();
    if (name.find(".png") == std::string::npos || name.rfind("chelsea_orient6.png", 0) == 0)
      if (name.find(".rgb.png") == std::string::npos && name.find(".upright.png") == std::string::npos)
        files.push_back(entry.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

void expect_same_pixels(const Image& got, const Image& want, const std::string& what) {
  ASSERT_EQ(got.width, want.width) << what;
  ASSERT_EQ(got.height, want.height) << what;
  size_t differing = 0, first = got.rgb.size();
  for (size_t i = 0; i < got.rgb.size(); ++i)
    if (got.rgb[i] != want.rgb[i]) {
      if (!differing) first = i;
      ++differing;
    }
  EXPECT_EQ(differing, 0u) << what << ": first difference at byte " << first << " of " << got.rgb.size();
}

TEST(ImageFormats, DecodeAsPillowConvertsToRgb) {
  const auto files = format_files();
  ASSERT_EQ(files.size(), 25u);
  for (const auto& file : files) expect_same_pixels(load_image(file), load_image(file + ".rgb.png"), file);
}

TEST(ImageFormats, UprightAsPillowExifTranspose) {
  int rotated = 0;
  for (const auto& file : format_files()) {
    const std::string bytes = read_file(file);
    const Image upright = decode_image_upright(bytes, file);
    // Pillow 9.4 turns a TIFF by its Orientation tag on open and exif_transpose turns it again; mmx turns
    // it once, so its upright TIFF is Pillow's opened one.
    const bool tiff = file.size() > 5 && file.substr(file.size() - 5) == ".tiff";
    expect_same_pixels(upright, load_image(file + (tiff ? ".rgb.png" : ".upright.png")), file);
    rotated += exif_orientation(bytes) != 1;
  }
  EXPECT_EQ(rotated, 9);  // seven JPEG orientations, one each in PNG eXIf and WebP EXIF
  // The repository's own phone-style photo: orientation 6, stored sideways.
  const std::string rocket = read_file(test::data("images/rocket_exif_rot90.jpg"));
  EXPECT_EQ(exif_orientation(rocket), 6);
  const Image stored = decode_image(rocket, "rocket"), upright = decode_image_upright(rocket, "rocket");
  EXPECT_EQ(upright.width, stored.height);
  EXPECT_EQ(upright.height, stored.width);
}

TEST(ImageFormats, DamagedFilesAreErrorsNamingTheFormat) {
  for (const std::string name : {"chelsea_lossy.webp", "chelsea.gif", "chelsea_lzw.tiff", "chelsea_24.bmp"}) {
    const std::string bytes = read_file(test::data("images/formats/" + name));
    for (size_t keep : {bytes.size() / 2, size_t(20)}) {
      try {
        decode_image(bytes.substr(0, keep), name);
        ADD_FAILURE() << name << " truncated to " << keep << " bytes decoded";
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("cannot decode"), std::string::npos) << e.what();
      }
    }
  }
}

TEST(ImageFormats, JpegEncodingRoundTrips) {
  const Image image = load_image(test::data("images/formats/chelsea_24.bmp.rgb.png"));
  const Image back = decode_image(encode_jpeg(image, 95), "thumbnail.jpg");
  ASSERT_EQ(back.width, image.width);
  double error = 0;
  for (size_t i = 0; i < image.rgb.size(); ++i) error += std::abs(int(image.rgb[i]) - int(back.rgb[i]));
  EXPECT_LT(error / image.rgb.size(), 4.0);  // quality 95: a few levels at most on average
}

}  // namespace
}  // namespace mmx
