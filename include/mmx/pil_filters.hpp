// Pillow's ImageFilter.GaussianBlur, reproduced bit for bit (src/io/pil_filters.cpp): what diffusers'
// VaeImageProcessor.blur and A1111's "mask blur" apply to an inpainting mask.
#pragma once

#include "mmx/image.hpp"

namespace mmx {

// image.filter(ImageFilter.GaussianBlur(radius)) on an RGB image (each channel on its own, as Pillow does):
// three passes of an extended box blur of radius l + a (Gwosdek et al. 2011) in 8.24 fixed point,
// horizontally then vertically. radius 0 returns the image unchanged.
Image gaussian_blur(const Image& image, float radius);

}  // namespace mmx
