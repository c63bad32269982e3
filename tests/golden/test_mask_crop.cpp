// Inpainting's padding_mask_crop against diffusers' VaeImageProcessor on Pillow 9.4
// (expected/sdxl-tiny-inpaint.safetensors, tools/make_inpaint_reference.py): the crop region, the "fill" resize
// (with stretched bands on a wide and a tall picture), apply_overlay (into a square and a wide box) pixel for
// pixel, and the whole pipeline — the generated crop's latents and the pasted-back image.
#include <cmath>

#include "mmx/image.hpp"
#include "mmx/safetensors.hpp"
#include "mmx/text_to_image.hpp"
#include "pipelines/mask_crop.hpp"
#include "test_util.hpp"

using namespace mmx;

namespace {

Image image_of(const Tensor& hwc) {  // [H, W, 3] float32 of uint8 values
  Image image;
  image.height = hwc.dim(0);
  image.width = hwc.dim(1);
  for (int64_t i = 0; i < hwc.numel(); ++i) image.rgb.push_back(static_cast<uint8_t>(hwc.data<float>()[i]));
  return image;
}

int64_t differing(const Image& a, const Image& b, int64_t* worst = nullptr) {
  EXPECT_EQ(a.rgb.size(), b.rgb.size());
  int64_t n = 0, w = 0;
  for (size_t i = 0; i < std::min(a.rgb.size(), b.rgb.size()); ++i) {
    const int64_t d = std::abs(int64_t(a.rgb[i]) - int64_t(b.rgb[i]));
    n += d != 0;
    w = std::max(w, d);
  }
  if (worst) *worst = w;
  return n;
}

}  // namespace

TEST(MaskCrop, RegionFillAndOverlayAreDiffusersPixelForPixel) {
  const auto e = SafetensorsFile::open(test::data("expected/sdxl-tiny-inpaint.safetensors"));
  const Image original = load_image(test::data("images/inpaint_crop_image.png"));
  const Image mask = load_image(test::data("images/inpaint_crop_mask.png"));
  const CropBox region = mask_crop_region(mask, 64, 64, 4);
  const Tensor want = e.get("crop/region");
  EXPECT_EQ(region.x1, int64_t(want.data<float>()[0]));
  EXPECT_EQ(region.y1, int64_t(want.data<float>()[1]));
  EXPECT_EQ(region.x2, int64_t(want.data<float>()[2]));
  EXPECT_EQ(region.y2, int64_t(want.data<float>()[3]));
  EXPECT_EQ(differing(resize_and_fill(crop(original, region), 64, 64), image_of(e.get("crop/filled_image"))), 0);
  EXPECT_EQ(differing(resize_and_fill(crop(mask, region), 64, 64), image_of(e.get("crop/filled_mask"))), 0);
  for (const std::string shape : {"wide", "tall"})
    EXPECT_EQ(differing(resize_and_fill(image_of(e.get("fill_" + shape + "/input")), 64, 64),
                        image_of(e.get("fill_" + shape + "/output"))), 0) << shape;
  const Image generated = image_of(e.get("crop/generated"));
  EXPECT_EQ(differing(apply_overlay(mask, original, generated, region), image_of(e.get("crop/image"))), 0);
  const Tensor box = e.get("overlay_wide/box");
  const CropBox wide{int64_t(box.data<float>()[0]), int64_t(box.data<float>()[1]), int64_t(box.data<float>()[2]),
                     int64_t(box.data<float>()[3])};
  EXPECT_EQ(differing(apply_overlay(mask, original, generated, wide), image_of(e.get("overlay_wide/image"))), 0);
}

TEST(MaskCrop, ThePipelineInpaintsTheCropAndPastesItBack) {
  const auto e = SafetensorsFile::open(test::data("expected/sdxl-tiny-inpaint.safetensors"));
  const auto pipe = SDXLPipeline::load(test::data("models/sdxl-tiny"), "", test::placement());
  GenerateOptions o;
  o.prompt = "An astronaut riding a green horse";
  o.image = load_image(test::data("images/inpaint_crop_image.png"));
  o.mask = load_image(test::data("images/inpaint_crop_mask.png"));
  o.mask_padding = 4;
  o.strength = 0.75;
  o.steps = 4;
  o.seed = 5;
  o.guidance_scale = 7.5f;
  o.keep_step_latents = true;
  const GenerateResult r = pipe->generate(o);
  test::expect_close("crop step_latents", r.step_latents, e.get("crop/step_latents"), 5e-5);
  // The decoded pixels may differ by one level where the float32 UNet rounds the other way; the
  // composite carries that through and nothing more.
  int64_t worst = 0;
  const int64_t n = differing(r.image, image_of(e.get("crop/image")), &worst);
  std::printf("  padding_mask_crop image: %lld of %lld values differ, by at most %lld\n", static_cast<long long>(n),
              static_cast<long long>(r.image.rgb.size()), static_cast<long long>(worst));
  EXPECT_LE(worst, 1);
  // Outside the mask's crop the original is untouched.
  const Image& original = *o.image;
  EXPECT_EQ(std::vector<uint8_t>(r.image.rgb.begin(), r.image.rgb.begin() + 64 * 3 * 10),
            std::vector<uint8_t>(original.rgb.begin(), original.rgb.begin() + 64 * 3 * 10));
}
