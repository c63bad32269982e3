// Fused multi-head attention with an online softmax (flash-attention style): keys and values stream
// through shared memory a tile at a time; each query row keeps its running max, sum and output in
// registers, so no score matrix ever reaches global memory. One warp per query row: lane j scores key
// j of the tile, then every lane accumulates its share of the head's D output channels.
// Masked keys score −FLT_MAX (as transformers' finfo.min): they get weight 0 beside any kept key, and a
// row with no key kept comes out as the mean of the values, like the CPU backend.
#include <cfloat>

#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/cuda_ops.hpp"

namespace mmx::cuda {

namespace {

constexpr int kRowsPerBlock = 8;  // warps per block, one query row each

template <class T, int DMAX, int KEYS>
__global__ void __launch_bounds__(kRowsPerBlock * 32)
attention_kernel(const T* q, const T* k, const T* v, T* y, int64_t tq, int64_t tk, int heads, int d,
                 const int64_t* key_padding_mask, bool causal, const float* score_bias, float scale) {
  __shared__ float k_tile[KEYS][DMAX + 1];  // +1: lane j reads row j, so rows must not share a bank
  __shared__ float v_tile[KEYS][DMAX];
  __shared__ float q_rows[kRowsPerBlock][DMAX];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int h = blockIdx.y, b = blockIdx.z;
  const int64_t row = int64_t(blockIdx.x) * kRowsPerBlock + warp;
  const int64_t ld = int64_t(heads) * d;
  const bool active = row < tq;
  constexpr int kPerLane = DMAX / 32;

  if (active)
    for (int c = lane; c < d; c += 32) q_rows[warp][c] = to_float(q[(b * tq + row) * ld + h * d + c]) * scale;
  float out[kPerLane];
  for (int t = 0; t < kPerLane; ++t) out[t] = 0.f;
  float running_max = -INFINITY, running_sum = 0.f;

  for (int64_t key0 = 0; key0 < tk; key0 += KEYS) {
    __syncthreads();  // the previous tile is no longer read
    for (int idx = threadIdx.x; idx < KEYS * d; idx += blockDim.x) {
      const int j = idx / d, c = idx % d;
      const int64_t key = key0 + j;
      const bool in = key < tk;
      k_tile[j][c] = in ? to_float(k[(b * tk + key) * ld + h * d + c]) : 0.f;
      v_tile[j][c] = in ? to_float(v[(b * tk + key) * ld + h * d + c]) : 0.f;
    }
    __syncthreads();
    if (!active) continue;
    const int64_t key = key0 + lane;
    float score = -INFINITY;  // lanes past the tile or past the last key take no part
    if (lane < KEYS && key < tk) {
      float s = 0.f;
      for (int c = 0; c < d; ++c) s = fmaf(q_rows[warp][c], k_tile[lane][c], s);
      if (score_bias) s += score_bias[((int64_t(b) * heads + h) * tq + row) * tk + key];
      const bool keep = (!key_padding_mask || key_padding_mask[b * tk + key] != 0) && (!causal || key <= row);
      score = keep ? s : -FLT_MAX;
    }
    const float tile_max = warp_max(score);
    const float new_max = fmaxf(running_max, tile_max);
    const float rescale = running_max == -INFINITY ? 0.f : expf(running_max - new_max);
    const float p = score == -INFINITY ? 0.f : expf(score - new_max);
    running_sum = running_sum * rescale + warp_sum(p);
    running_max = new_max;
    for (int t = 0; t < kPerLane; ++t) out[t] *= rescale;
    for (int j = 0; j < KEYS; ++j) {
      const float pj = __shfl_sync(0xffffffffu, p, j);
      for (int t = 0; t < kPerLane; ++t) {
        const int c = lane + 32 * t;
        if (c < d) out[t] = fmaf(pj, v_tile[j][c], out[t]);
      }
    }
  }
  if (!active) return;
  const float inv = 1.f / running_sum;
  for (int t = 0; t < kPerLane; ++t) {
    const int c = lane + 32 * t;
    if (c < d) y[(b * tq + row) * ld + h * d + c] = from_float<T>(out[t] * inv);
  }
}

template <class T, int DMAX, int KEYS>
void launch(const Tensor& q, const Tensor& k, const Tensor& v, int64_t heads, const Tensor& mask, bool causal,
            const Tensor& score_bias, Tensor& y) {
  const int64_t batch = q.dim(0), tq = q.dim(1), tk = k.dim(1), d = q.dim(2) / heads;
  const dim3 grid(static_cast<unsigned>((tq + kRowsPerBlock - 1) / kRowsPerBlock), static_cast<unsigned>(heads),
                  static_cast<unsigned>(batch));
  attention_kernel<T, DMAX, KEYS><<<grid, kRowsPerBlock * 32, 0, stream()>>>(
      q.ptr<T>(), k.ptr<T>(), v.ptr<T>(), y.ptr<T>(), tq, tk, int(heads), int(d),
      mask.defined() ? mask.ptr<int64_t>() : nullptr, causal, score_bias.defined() ? score_bias.ptr<float>() : nullptr,
      1.f / sqrtf(float(d)));
}

}  // namespace

void attention(const Tensor& q, const Tensor& k, const Tensor& v, int64_t heads, const Tensor& key_padding_mask,
               bool causal, const Tensor& score_bias, Tensor& y) {
  const int64_t d = q.dim(2) / heads;
  if (y.numel() == 0) return;
  if (k.dim(1) == 0) fail("attention: no keys");
  if (d > 256) fail("attention: the CUDA kernel handles heads of up to 256 channels, got ", d);
  if (q.dim(0) > 65535 || heads > 65535) fail("attention: batch ", q.dim(0), " × heads ", heads, " exceeds the grid");
  dispatch_float(q.dtype(), "attention", [&]<class T>() {
    if (d <= 64)
      launch<T, 64, 32>(q, k, v, heads, key_padding_mask, causal, score_bias, y);
    else if (d <= 128)
      launch<T, 128, 32>(q, k, v, heads, key_padding_mask, causal, score_bias, y);
    else
      launch<T, 256, 16>(q, k, v, heads, key_padding_mask, causal, score_bias, y);
  });
  MMX_CUDA_LAUNCH_CHECK();
}

}  // namespace mmx::cuda
