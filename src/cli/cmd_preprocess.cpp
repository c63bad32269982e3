// mmx preprocess: the pixel_values a model folder's image processor gives, to the bit.
#include <cstdio>

#include "cli/commands.hpp"
#include "mmx/model.hpp"
#include "mmx/files.hpp"
#include "mmx/image_processor.hpp"
#include "mmx/npy.hpp"
#include "mmx/safetensors.hpp"

namespace mmx::cli {

const Command kPreprocessCommand{
    "preprocess",
    "mmx preprocess --model MODEL (--image PATH)... --output FILE",
    "Write pixel_values [N, 3, H, W] F32 exactly as the folder's Hugging Face image processor makes them.",
    {
        {"model", "MODEL", "a model folder with preprocessor_config.json (ViT or CLIP image processor), or its Hub id"},
        {"image", "PATH", "an image (PNG, JPEG, WebP, GIF, TIFF, BMP), a folder of them, or a quoted pattern", true},
        skip_bad_images_option(),
        {"output", "FILE", ".safetensors (pixel_values) or .npy"},
    },
    R"(Steps, as transformers runs them: decode and convert to RGB as Pillow does, resize with Pillow's
filter (BILINEAR for ViT, BICUBIC for CLIP, or the config's `resample`), center crop (CLIP), rescale
by 1/255 in float64 stored as float32, normalise with the config's mean and std in float32.

example:
  mmx preprocess --model tests/data/models/vit-tiny --image tests/data/images/ --skip-bad-images \
                 --output pixels.safetensors
)",
};

int run_preprocess(const Args& args) {
  const auto model = args.get("model");
  if (!model) usage_error("--model MODEL is required");
  const auto output = args.get("output");
  if (!output) usage_error("--output FILE is required (.safetensors or .npy)");
  const std::string ext = extension_of(*output);
  if (ext != ".safetensors" && ext != ".npy") usage_error("--output '", *output, "': use .safetensors or .npy");
  check_output_path(*output);
  std::vector<std::string> paths = collect_image_paths(args);
  const ImageProcessorConfig processor = load_image_processor(*model);
  const Tensor pixel_values = preprocess_images(load_images(paths, args.has("skip-bad-images")), processor);
  if (ext == ".npy") write_npy(*output, pixel_values);
  else write_safetensors(*output, {{"pixel_values", pixel_values}}, {{"model", *model}, {"images", str(paths.size())}});
  if (chatty()) std::fprintf(stderr, "wrote %s: pixel_values %s (%s)\n", output->c_str(), shape_str(pixel_values.shape()).c_str(),
               processor.kind.c_str());
  return 0;
}

}  // namespace mmx::cli
