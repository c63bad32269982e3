// Fused multi-head attention with an online softmax (flash-attention style): keys and values stream
// through shared memory a tile at a time; each query row keeps its running max and sum, so no score
// matrix ever reaches global memory. Two kernels:
// - tensor cores (F16/BF16, 64-wide heads: BERT, ViT, CLIP and SDXL all use 64): 64 query rows per block,
//   16 per warp; S = Q·Kᵀ and O += P·V on WMMA 16×16×16 tiles with f32 accumulation, P rounded to the
//   storage type as flash-attention does;
// - CUDA cores (any dtype, heads up to 256 wide): one warp per query row, lane j scores key j of the
//   tile, then every lane accumulates its share of the head's output channels.
// MMX_CUDA_ATTENTION=simple forces the second (to compare them).
// Masked keys score −FLT_MAX (as transformers' finfo.min): they get weight 0 beside any kept key, and a
// row with no key kept comes out as the mean of the values, like the CPU backend.
#include <mma.h>

#include <cfloat>
#include <cstdlib>
#include <cstring>

#include <mutex>

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


namespace wmma = nvcuda::wmma;
constexpr int kTcRows = 64, kTcKeys = 64, kTcD = 64;  // query rows per block (4 warps × 16), keys per tile, head width
constexpr int kHalfLd = kTcD + 8;                      // 16-bit row pitch: 144 bytes keeps WMMA's 32-byte alignment
constexpr int kFloatLd = kTcKeys + 4;                  // f32 row pitch
constexpr size_t kTcTileBytes = sizeof(uint16_t) * kTcRows * kHalfLd;                  // one Q, K or V tile
constexpr size_t kTcWarpFloats = sizeof(float) * 16 * kFloatLd;                        // a warp's S or O
constexpr size_t kTcSharedBytes = 3 * kTcTileBytes + 4 * (2 * kTcWarpFloats) + 4 * sizeof(uint16_t) * 16 * kHalfLd;

template <class T>
__global__ void __launch_bounds__(128)
attention_tc_kernel(const T* q, const T* k, const T* v, T* y, int64_t tq, int64_t tk, int heads,
                    const int64_t* key_padding_mask, bool causal, const float* score_bias, float scale) {
  extern __shared__ __align__(128) unsigned char shared[];
  auto* qs = reinterpret_cast<T(*)[kHalfLd]>(shared);
  auto* ks = reinterpret_cast<T(*)[kHalfLd]>(shared + kTcTileBytes);
  auto* vs = reinterpret_cast<T(*)[kHalfLd]>(shared + 2 * kTcTileBytes);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  auto* ss = reinterpret_cast<float(*)[kFloatLd]>(shared + 3 * kTcTileBytes + warp * kTcWarpFloats);      // scores
  auto* os = reinterpret_cast<float(*)[kFloatLd]>(shared + 3 * kTcTileBytes + (4 + warp) * kTcWarpFloats);  // output
  auto* ps = reinterpret_cast<T(*)[kHalfLd]>(shared + 3 * kTcTileBytes + 8 * kTcWarpFloats +
                                             warp * sizeof(uint16_t) * 16 * kHalfLd);  // probabilities
  const int h = blockIdx.y, b = blockIdx.z;
  const int64_t row0 = int64_t(blockIdx.x) * kTcRows, ld = int64_t(heads) * kTcD;

  // A tile of 64 rows × 64 channels in 16-byte vectors (8 elements), zero past the last row.
  auto load_tile = [&](T(*dst)[kHalfLd], const T* src, int64_t first, int64_t rows) {
    for (int idx = threadIdx.x; idx < 64 * 8; idx += blockDim.x) {
      const int r = idx >> 3, c = (idx & 7) * 8;
      const int64_t row = first + r;
      uint4 value = make_uint4(0, 0, 0, 0);
      if (row < rows) value = *reinterpret_cast<const uint4*>(src + (b * rows + row) * ld + h * kTcD + c);
      *reinterpret_cast<uint4*>(&dst[r][c]) = value;
    }
  };
  load_tile(qs, q, row0, tq);
  for (int i = lane; i < 16 * kTcD; i += 32) os[i / kTcD][i % kTcD] = 0.f;
  // Lanes 2r and 2r + 1 own row r of the warp's 16: columns [0, 32) and [32, 64) of each tile.
  const int r = lane >> 1, c0 = (lane & 1) * 32;
  const int64_t row = row0 + warp * 16 + r;
  float running_max = -INFINITY, running_sum = 0.f;

  for (int64_t key0 = 0; key0 < tk; key0 += kTcKeys) {
    __syncthreads();  // every warp is done with the previous K and V
    load_tile(ks, k, key0, tk);
    load_tile(vs, v, key0, tk);
    __syncthreads();
    for (int j = 0; j < kTcKeys / 16; ++j) {  // S[:, 16j..] = Q · K[16j..]ᵀ
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      wmma::fill_fragment(acc, 0.f);
      for (int kk = 0; kk < kTcD / 16; ++kk) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> a;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> bt;  // Kᵀ: (channel, key) at key·ld + channel
        wmma::load_matrix_sync(a, &qs[warp * 16][kk * 16], kHalfLd);
        wmma::load_matrix_sync(bt, &ks[j * 16][kk * 16], kHalfLd);
        wmma::mma_sync(acc, a, bt, acc);
      }
      wmma::store_matrix_sync(&ss[0][j * 16], acc, kFloatLd, wmma::mem_row_major);
    }
    __syncwarp();
    float scores[32];
    float tile_max = -INFINITY;
    for (int c = 0; c < 32; ++c) {
      const int64_t key = key0 + c0 + c;
      float s = -INFINITY;  // past the last key: no part in the softmax
      if (key < tk) {
        s = ss[r][c0 + c] * scale;
        if (score_bias && row < tq) s += score_bias[((int64_t(b) * heads + h) * tq + row) * tk + key];
        const bool keep = (!key_padding_mask || key_padding_mask[b * tk + key] != 0) && (!causal || key <= row);
        if (!keep) s = -FLT_MAX;
      }
      scores[c] = s;
      tile_max = fmaxf(tile_max, s);
    }
    tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 1));
    const float new_max = fmaxf(running_max, tile_max);
    const float rescale = running_max == -INFINITY ? 0.f : expf(running_max - new_max);
    float sum = 0.f;
    for (int c = 0; c < 32; ++c) {
      const float p = scores[c] == -INFINITY ? 0.f : expf(scores[c] - new_max);
      sum += p;
      ps[r][c0 + c] = from_float<T>(p);
      os[r][c0 + c] *= rescale;
    }
    running_sum = running_sum * rescale + sum + __shfl_xor_sync(0xffffffffu, sum, 1);
    running_max = new_max;
    __syncwarp();
    for (int j = 0; j < kTcD / 16; ++j) {  // O[:, 16j..] += P · V[:, 16j..]
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      wmma::load_matrix_sync(acc, &os[0][j * 16], kFloatLd, wmma::mem_row_major);
      for (int kk = 0; kk < kTcKeys / 16; ++kk) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> a;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> bv;
        wmma::load_matrix_sync(a, &ps[0][kk * 16], kHalfLd);
        wmma::load_matrix_sync(bv, &vs[kk * 16][j * 16], kHalfLd);
        wmma::mma_sync(acc, a, bv, acc);
      }
      wmma::store_matrix_sync(&os[0][j * 16], acc, kFloatLd, wmma::mem_row_major);
    }
    __syncwarp();
  }
  if (row >= tq) return;
  const float inv = 1.f / running_sum;
  T* out = y + (b * tq + row) * ld + h * kTcD + c0;
  for (int c = 0; c < 32; ++c) out[c] = from_float<T>(os[r][c0 + c] * inv);
}

bool simple_attention_forced() {  // read on every call, so a test can compare both kernels
  const char* e = std::getenv("MMX_CUDA_ATTENTION");
  return e && std::strcmp(e, "simple") == 0;
}

// Whether the tensor-core kernel of element type T may use its shared memory on a device (an attribute
// each device's context holds).
template <class T>
struct TensorCoreKernelConfigured {
  std::once_flag once;
};

template <class T>
void launch_tensor_cores(CudaBackend& cuda, const Tensor& q, const Tensor& k, const Tensor& v, int64_t heads,
                         const Tensor& mask, bool causal, const Tensor& score_bias, Tensor& y) {
  std::call_once(cuda.cache<TensorCoreKernelConfigured<T>>().once, [] {
    MMX_CUDA_CHECK(cudaFuncSetAttribute(attention_tc_kernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        int(kTcSharedBytes)));
  });
  const int64_t batch = q.dim(0), tq = q.dim(1), tk = k.dim(1);
  const dim3 grid(static_cast<unsigned>((tq + kTcRows - 1) / kTcRows), static_cast<unsigned>(heads),
                  static_cast<unsigned>(batch));
  attention_tc_kernel<T><<<grid, 128, kTcSharedBytes, cuda.stream()>>>(
      q.ptr<T>(), k.ptr<T>(), v.ptr<T>(), y.ptr<T>(), tq, tk, int(heads),
      mask.defined() ? mask.ptr<int64_t>() : nullptr, causal, score_bias.defined() ? score_bias.ptr<float>() : nullptr,
      1.f / sqrtf(float(kTcD)));
}

template <class T, int DMAX, int KEYS>
void launch(CudaBackend& cuda, const Tensor& q, const Tensor& k, const Tensor& v, int64_t heads, const Tensor& mask, bool causal,
            const Tensor& score_bias, Tensor& y) {
  const int64_t batch = q.dim(0), tq = q.dim(1), tk = k.dim(1), d = q.dim(2) / heads;
  const dim3 grid(static_cast<unsigned>((tq + kRowsPerBlock - 1) / kRowsPerBlock), static_cast<unsigned>(heads),
                  static_cast<unsigned>(batch));
  attention_kernel<T, DMAX, KEYS><<<grid, kRowsPerBlock * 32, 0, cuda.stream()>>>(
      q.ptr<T>(), k.ptr<T>(), v.ptr<T>(), y.ptr<T>(), tq, tk, int(heads), int(d),
      mask.defined() ? mask.ptr<int64_t>() : nullptr, causal, score_bias.defined() ? score_bias.ptr<float>() : nullptr,
      1.f / sqrtf(float(d)));
}

}  // namespace

void attention(const Tensor& q, const Tensor& k, const Tensor& v, int64_t heads, const Tensor& key_padding_mask,
               bool causal, const Tensor& score_bias, Tensor& y) {
  const int64_t d = q.dim(2) / heads;
  if (y.numel() == 0) return;
  CudaBackend& cuda = CudaBackend::of(y.device());
  if (k.dim(1) == 0) fail("attention: no keys");
  if (d > 256) fail("attention: the CUDA kernel handles heads of up to 256 channels, got ", d);
  if (q.dim(0) > 65535 || heads > 65535) fail("attention: batch ", q.dim(0), " × heads ", heads, " exceeds the grid");
  // The tensor-core kernel reads rows in 16-byte vectors: every row start must be 16-byte aligned.
  const auto aligned = [](const Tensor& t) { return reinterpret_cast<uintptr_t>(t.raw()) % 16 == 0; };
  if (d == kTcD && q.dtype() != DType::F32 && aligned(q) && aligned(k) && aligned(v) && !simple_attention_forced()) {
    if (q.dtype() == DType::F16)
      launch_tensor_cores<__half>(cuda, q, k, v, heads, key_padding_mask, causal, score_bias, y);
    else
      launch_tensor_cores<__nv_bfloat16>(cuda, q, k, v, heads, key_padding_mask, causal, score_bias, y);
    MMX_CUDA_LAUNCH_CHECK();
    return;
  }
  dispatch_float(q.dtype(), "attention", [&]<class T>() {
    if (d <= 64)
      launch<T, 64, 32>(cuda, q, k, v, heads, key_padding_mask, causal, score_bias, y);
    else if (d <= 128)
      launch<T, 128, 32>(cuda, q, k, v, heads, key_padding_mask, causal, score_bias, y);
    else
      launch<T, 256, 16>(cuda, q, k, v, heads, key_padding_mask, causal, score_bias, y);
  });
  MMX_CUDA_LAUNCH_CHECK();
}

void add_attention_ops(OpTable& ops) { ops.attention = attention; }

}  // namespace mmx::cuda
