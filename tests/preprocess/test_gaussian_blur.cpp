// Pillow's ImageFilter.GaussianBlur (images/blur/, tests/data/generator/make_gaussian_blur.py): the inpainting
// mask and a photo crop at radii 0.5 to 33 (wider than the image), pixel for pixel.
#include "mmx/image.hpp"
#include "mmx/pil_filters.hpp"
#include "test_util.hpp"

using namespace mmx;

TEST(GaussianBlur, IsPillowsPixelForPixel) {
  for (const std::string name : {"mask", "coffee"}) {
    const Image input = load_image(test::data("images/blur/" + name + ".png"));
    for (const std::string radius : {"0.5", "1", "2.5", "4", "33"}) {
      const Image want = load_image(test::data("images/blur/" + name + "_r" + radius + ".png"));
      const Image got = gaussian_blur(input, std::stof(radius));
      ASSERT_EQ(got.rgb.size(), want.rgb.size());
      int64_t differing = 0;
      for (size_t i = 0; i < got.rgb.size(); ++i) differing += got.rgb[i] != want.rgb[i];
      EXPECT_EQ(differing, 0) << name << " radius " << radius;
    }
  }
  const Image one = load_image(test::data("images/blur/mask.png"));
  EXPECT_EQ(gaussian_blur(one, 0).rgb, one.rgb);
}
