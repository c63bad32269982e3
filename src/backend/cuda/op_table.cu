#include "backend/backend.hpp"
#include "backend/cuda/cuda_ops.hpp"

namespace mmx {

namespace {
// ops::gemm takes host pointers (the CPU's strided products); on CUDA every product goes through linear.
void gemm_on_host_pointers(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t,
                           float, float*, int64_t) {
  fail("ops::gemm runs on host memory; the CUDA backend multiplies through ops::linear");
}
}  // namespace

const OpTable* cuda_op_table() {
  static const OpTable table{"cuda",          gemm_on_host_pointers, cuda::linear,     cuda::pack_linear_weight,
                             cuda::layer_norm, cuda::activation,     cuda::softmax,    cuda::add,
                             cuda::embedding,  cuda::attention,      cuda::conv2d,     cuda::group_norm,
                             cuda::upsample_nearest2x, cuda::pad_bottom_right, cuda::transpose12,
                             cuda::add_channel_bias, cuda::concat1, cuda::geglu, cuda::select_tokens, cuda::patchify,
                             cuda::record_graph,      cuda::replay_graph, cuda::release_graph};
  return &table;
}

}  // namespace mmx
