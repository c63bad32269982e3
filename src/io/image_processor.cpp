// Follows transformers v4.45 image_processing_vit.py / image_processing_clip.py and
// image_transforms.py (resize, center_crop, rescale, normalize) step by step, including numpy's
// dtypes: rescale multiplies in float64 and stores float32; normalize subtracts and divides in float32.
#include "mmx/image_processor.hpp"

#include <cmath>
#include <cstring>
#include <tuple>

#include "core/log.hpp"
#include "io/json_config.hpp"

namespace mmx {

namespace {

struct SizeDict {
  std::optional<int64_t> height, width, shortest_edge, longest_edge;
};

// image_processing_utils.get_size_dict: an int means a square (default_to_square) or the shortest edge.
SizeDict parse_size(const JsonObject& json, const std::string& key, bool default_to_square) {
  const auto& v = json.json().at(key);
  SizeDict s;
  auto positive = [&](const nlohmann::json& x, const std::string& what) {
    if (!x.is_number_integer())
      fail(json.source(), ": key '", key, "': ", what, " must be a positive integer, found ", x.dump());
    return json.int_element(key + "." + what, x, limits::kImageSide);
  };
  if (v.is_number()) {
    const int64_t n = positive(v, "size");
    if (default_to_square) s.height = s.width = n;
    else s.shortest_edge = n;
  } else if (v.is_array() && v.size() == 2) {
    s.height = positive(v[0], "height");
    s.width = positive(v[1], "width");
  } else if (v.is_object()) {
    if (v.contains("height") || v.contains("width")) {
      if (!v.contains("height") || !v.contains("width")) fail(json.source(), ": key '", key, "' needs both height and width");
      s.height = positive(v["height"], "height");
      s.width = positive(v["width"], "width");
    }
    if (v.contains("shortest_edge")) s.shortest_edge = positive(v["shortest_edge"], "shortest_edge");
    if (v.contains("longest_edge")) s.longest_edge = positive(v["longest_edge"], "longest_edge");
    if (!s.height && !s.shortest_edge)
      fail(json.source(), ": key '", key, "' must hold height and width, or shortest_edge; found ", v.dump());
  } else {
    fail(json.source(), ": key '", key, "': expected an integer, [height, width] or an object, found ", v.dump());
  }
  return s;
}

std::vector<double> parse_triple(const JsonObject& json, const std::string& key, std::vector<double> fallback) {
  if (!json.has(key)) return fallback;
  const auto& v = json.json().at(key);
  if (v.is_number()) {
    const double x = json.float_element(key, v, limits::kFinite);
    return {x, x, x};
  }
  if (!v.is_array() || v.size() != 3) fail(json.source(), ": key '", key, "' must be 3 numbers (one per RGB channel)");
  std::vector<double> out;
  for (const auto& x : v) out.push_back(json.float_element(key, x, limits::kFinite));
  return out;
}

// image_transforms.get_resize_output_image_size(default_to_square=False): the shorter side becomes
// `shortest_edge`, the other int(shortest_edge · long / short), optionally capped by longest_edge.
std::pair<int64_t, int64_t> shortest_edge_size(int64_t height, int64_t width, int64_t size,
                                               std::optional<int64_t> max_size) {
  const bool portrait = width <= height;
  const int64_t short_side = portrait ? width : height, long_side = portrait ? height : width;
  int64_t new_short = size;
  int64_t new_long = static_cast<int64_t>(static_cast<double>(size * long_side) / static_cast<double>(short_side));
  if (max_size) {
    if (*max_size <= size) fail("preprocessor: longest_edge ", *max_size, " must exceed shortest_edge ", size);
    if (new_long > *max_size) {
      new_short = static_cast<int64_t>(static_cast<double>(*max_size * new_short) / static_cast<double>(new_long));
      new_long = *max_size;
    }
  }
  return portrait ? std::pair{new_long, new_short} : std::pair{new_short, new_long};  // (height, width)
}

int64_t floor_div(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

// image_transforms.center_crop on HWC uint8, padding with zeros where the crop exceeds the image.
Image center_crop(const Image& in, int64_t crop_h, int64_t crop_w) {
  int64_t top = floor_div(in.height - crop_h, 2), left = floor_div(in.width - crop_w, 2);
  Image out;
  out.height = crop_h;
  out.width = crop_w;
  out.rgb.assign(size_t(crop_h) * crop_w * 3, 0);
  if (top < 0 || left < 0 || top + crop_h > in.height || left + crop_w > in.width) {
    // Padding path: the image is centred on a zero canvas first (offsets rounded up), then cropped.
    const int64_t new_h = std::max(crop_h, in.height), new_w = std::max(crop_w, in.width);
    const int64_t top_pad = (new_h - in.height + 1) / 2, left_pad = (new_w - in.width + 1) / 2;
    top += top_pad;
    left += left_pad;
    const int64_t r0 = std::max<int64_t>(0, top), r1 = std::min(new_h, top + crop_h);
    const int64_t c0 = std::max<int64_t>(0, left), c1 = std::min(new_w, left + crop_w);
    out.height = r1 - r0;
    out.width = c1 - c0;
    out.rgb.assign(size_t(out.height) * out.width * 3, 0);
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t c = c0; c < c1; ++c) {
        const int64_t sr = r - top_pad, sc = c - left_pad;
        if (sr < 0 || sr >= in.height || sc < 0 || sc >= in.width) continue;
        std::memcpy(&out.rgb[(size_t(r - r0) * out.width + (c - c0)) * 3], &in.rgb[(size_t(sr) * in.width + sc) * 3], 3);
      }
    return out;
  }
  for (int64_t r = 0; r < crop_h; ++r)
    std::memcpy(&out.rgb[size_t(r) * crop_w * 3], &in.rgb[(size_t(top + r) * in.width + left) * 3], size_t(crop_w) * 3);
  return out;
}

}  // namespace

ImageProcessorConfig ImageProcessorConfig::defaults(const std::string& kind, int64_t size) {
  ImageProcessorConfig c;
  c.kind = kind;
  if (kind == "CLIPImageProcessor") {
    c.shortest_edge = size;
    c.crop_height = c.crop_width = size;
    c.do_center_crop = true;
    c.resample = Resample::Bicubic;
    c.image_mean = {0.48145466, 0.4578275, 0.40821073};  // OPENAI_CLIP_MEAN
    c.image_std = {0.26862954, 0.26130258, 0.27577711};  // OPENAI_CLIP_STD
  } else {
    c.height = c.width = size;
  }
  return c;
}

ImageProcessorConfig ImageProcessorConfig::load(const std::string& path, const std::string& default_kind) {
  const JsonObject json = JsonObject::load(path);
  std::string kind = json.get_string("image_processor_type", json.get_string("feature_extractor_type", ""));
  if (kind.empty()) kind = default_kind.empty() ? "ViTImageProcessor" : default_kind;
  const bool vit_kind = kind == "ViTImageProcessor" || kind == "ViTFeatureExtractor" || kind == "ViTImageProcessorFast";
  const bool clip_kind = kind == "CLIPImageProcessor" || kind == "CLIPFeatureExtractor";
  if (!vit_kind && !clip_kind)
    fail(path, ": image processor '", kind, "' is not supported (supported: ViTImageProcessor, CLIPImageProcessor)");
  ImageProcessorConfig c = defaults(clip_kind ? "CLIPImageProcessor" : "ViTImageProcessor");
  const bool clip = c.kind == "CLIPImageProcessor";
  c.do_resize = json.get_bool("do_resize", c.do_resize);
  c.do_center_crop = json.get_bool("do_center_crop", c.do_center_crop);
  c.do_rescale = json.get_bool("do_rescale", c.do_rescale);
  c.do_normalize = json.get_bool("do_normalize", c.do_normalize);
  c.rescale_factor = json.get_float("rescale_factor", c.rescale_factor, limits::kPositiveScale);
  if (json.has("resample")) {
    try {
      c.resample = resample_from_code(json.get_int("resample", 0));
    } catch (const Error& e) {
      rethrow_with_context(e, path + ": key 'resample'");
    }
  }
  if (json.has("size")) {
    const SizeDict s = parse_size(json, "size", /*default_to_square=*/!clip);
    c.height = s.height;
    c.width = s.width;
    c.shortest_edge = s.shortest_edge;
    c.longest_edge = s.longest_edge;
  }
  if (json.has("crop_size")) {
    const SizeDict s = parse_size(json, "crop_size", /*default_to_square=*/true);
    if (!s.height) fail(path, ": key 'crop_size' must give height and width");
    c.crop_height = *s.height;
    c.crop_width = *s.width;
  }
  c.image_mean = parse_triple(json, "image_mean", c.image_mean);
  c.image_std = parse_triple(json, "image_std", c.image_std);
  for (double m : c.image_mean) json.check("image_mean", m, limits::kFinite);
  // A standard deviation divides every pixel: below 1e-6 (a zero, a denormal) the pixels are no longer finite.
  for (double s : c.image_std) json.check("image_std", s, {1e-6, 1e6, false, "a standard deviation of pixel values"});
  return c;
}

Tensor preprocess_image(const Image& image, const ImageProcessorConfig& c) {
  Image x = image;
  if (c.do_resize) {
    int64_t h, w;
    if (c.height && c.width) {
      h = *c.height;
      w = *c.width;
    } else {
      std::tie(h, w) = shortest_edge_size(x.height, x.width, *c.shortest_edge, c.longest_edge);
    }
    if (h * w > kMaxImagePixels)  // a 1 × 10⁸ strip scaled to a shortest edge of 224
      fail("an image of ", x.width, "×", x.height, " would be resized to ", w, "×", h, ", more than ", kMaxImagePixels,
           " pixels");
    x = resize(x, w, h, c.resample);
  }
  if (c.do_center_crop) x = center_crop(x, c.crop_height, c.crop_width);
  Tensor out = Tensor::empty({3, x.height, x.width});
  float* p = out.data<float>();
  const size_t plane = size_t(x.height) * x.width;
  for (int ch = 0; ch < 3; ++ch) {
    const float mean = static_cast<float>(c.image_mean[ch]), std = static_cast<float>(c.image_std[ch]);
    for (size_t i = 0; i < plane; ++i) {
      float v = c.do_rescale ? static_cast<float>(static_cast<double>(x.rgb[i * 3 + ch]) * c.rescale_factor)
                             : static_cast<float>(x.rgb[i * 3 + ch]);
      if (c.do_normalize) v = (v - mean) / std;
      p[ch * plane + i] = v;
    }
  }
  return out;
}

Tensor preprocess_images(const std::vector<Image>& images, const ImageProcessorConfig& config) {
  if (images.empty()) usage_error("no images to preprocess");
  std::vector<Tensor> each;
  for (const auto& image : images) each.push_back(preprocess_image(image, config));
  for (const auto& t : each)
    if (t.shape() != each[0].shape())
      fail("preprocessed images differ in size (", shape_str(t.shape()), " vs ", shape_str(each[0].shape()),
           "): this processor does not resize them to one size");
  Shape shape = each[0].shape();
  shape.insert(shape.begin(), static_cast<int64_t>(each.size()));
  Tensor batch = Tensor::empty(shape);
  for (size_t i = 0; i < each.size(); ++i)
    std::memcpy(batch.data<float>() + i * each[0].numel(), each[i].raw(), each[i].nbytes());
  return batch;
}

}  // namespace mmx
