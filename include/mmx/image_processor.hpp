// Hugging Face image processors (src/io/image_processor.cpp: ViTImageProcessor / ViTFeatureExtractor,
// CLIPImageProcessor / CLIPFeatureExtractor) from preprocessor_config.json: resize (Pillow-exact), center crop, rescale,
// normalize → pixel_values [N, 3, H, W] F32, the same bits transformers produces.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "mmx/image.hpp"
#include "mmx/pil_resize.hpp"
#include "mmx/tensor.hpp"

namespace mmx {

struct ImageProcessorConfig {
  std::string kind = "ViTImageProcessor";  // or "CLIPImageProcessor"
  bool do_resize = true, do_center_crop = false, do_rescale = true, do_normalize = true;
  // size: {"height", "width"} or {"shortest_edge"} (with an optional "longest_edge" cap)
  std::optional<int64_t> height, width, shortest_edge, longest_edge;
  int64_t crop_height = 224, crop_width = 224;
  Resample resample = Resample::Bilinear;
  double rescale_factor = 1.0 / 255.0;
  std::vector<double> image_mean = {0.5, 0.5, 0.5}, image_std = {0.5, 0.5, 0.5};

  // Defaults of the processor class named in the file (image_processor_type / feature_extractor_type),
  // or of `default_kind` (the model's, from the registry; "" means ViTImageProcessor) when the file names
  // none; then the file's values.
  static ImageProcessorConfig load(const std::string& path, const std::string& default_kind = "");
  // The class defaults of "ViTImageProcessor" or "CLIPImageProcessor" at `size` (224, as transformers').
  static ImageProcessorConfig defaults(const std::string& kind, int64_t size = 224);
};

// One image through resize → center crop → rescale → normalize: [3, H, W] F32.
Tensor preprocess_image(const Image& image, const ImageProcessorConfig& config);
// Images of any sizes → one batch [N, 3, H, W] (every image ends at the same size).
Tensor preprocess_images(const std::vector<Image>& images, const ImageProcessorConfig& config);

}  // namespace mmx
