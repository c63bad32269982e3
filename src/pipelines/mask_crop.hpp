// Inpainting "only the masked area" (diffusers' padding_mask_crop, A1111's "Only masked"; mask_crop.cpp):
// VaeImageProcessor's get_crop_region, its "fill" and "crop" resize modes and apply_overlay, with Pillow's
// integer arithmetic (Lanczos resize with a box, paste through an "L" mask, premultiplied alpha, alpha
// composite), so that the crop, the model's input and the pasted-back result are diffusers' own.
#pragma once
#include <cstdint>

#include "mmx/image.hpp"

namespace mmx {

// Pillow's convert("L") of pixel i (ITU-R 601-2 luma in 16-bit fixed point): how a mask is read.
uint8_t pillow_luma(const Image& image, int64_t i);

struct CropBox {
  int64_t x1, y1, x2, y2;  // [x1, x2) × [y1, y2)
};

// The mask's non-black bounding box grown by `pad` and then to the aspect ratio of width × height, kept
// inside the image (get_crop_region).
CropBox mask_crop_region(const Image& mask, int64_t width, int64_t height, int64_t pad);
Image crop(const Image& image, const CropBox& box);
// resize_mode "fill": fit inside width × height keeping the aspect, the margins filled by stretching the
// edge rows (or columns) (_resize_and_fill).
Image resize_and_fill(const Image& image, int64_t width, int64_t height);
// resize_mode "crop": cover width × height keeping the aspect, centred, the rest cut (_resize_and_crop).
Image resize_and_crop(const Image& image, int64_t width, int64_t height);
// apply_overlay: the generated crop resized into its box of an image of the generated size, then the
// original (resized to that size) composited over it where the mask is black.
Image apply_overlay(const Image& mask, const Image& original, const Image& generated, const CropBox& box);

}  // namespace mmx
