// What the CUDA op families share: the im2col + cuBLASLt convolution of gemm.cu, which conv.cu falls back
// to where cuDNN declines a shape (or MMX_CUDA_CONV=im2col), and the per-channel bias both paths add.
#pragma once
#include "mmx/tensor.hpp"

namespace mmx::cuda {

void conv2d_im2col(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride, int64_t padding, Tensor& y);
void add_conv_bias(Tensor& y, const Tensor& bias);  // y[n, o, :, :] += bias[o]

}  // namespace mmx::cuda
