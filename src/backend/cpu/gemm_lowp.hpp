// The low-precision GEMM behind nn.Linear at `--dtype bf16` and `--dtype int8` on the CPU: C = A·Wᵀ with
// the weight packed once (on first use) into bf16 or int8 panels, the activations rounded (bf16) or
// quantized per row (int8) once per call, and the products summed in f32 (bf16) or exactly in int32
// (int8) by the dot-product units the CPU has: AMX tiles, AVX512_BF16, AVX512_VNNI, AVX-VNNI. Each unit
// has a scalar twin doing the same arithmetic, which the tests compare it with.
//
// Panels (every kernel reads the same ones): 32 output features per panel; inside a panel K runs in
// groups of `group` consecutive values per feature, [Kp / group][32][group], with group = 2 (bf16, the
// pair vdpbf16ps and tdpbf16ps multiply) or 4 (int8, vpdpbusd's and tdpbusd's quadruple), so a row of
// 32 groups is one 128-byte line pair that a zmm kernel loads as two vectors and an AMX kernel as two
// 16-column tiles. K is padded with zeros to Kp, a multiple of the AMX tile's depth (32 bf16, 64 int8).
//
// int8: weights are symmetric per output feature (w ≈ sw[n]·q, q in [−127, 127]); activations are
// symmetric per row (x ≈ sa[m]·q) and stored offset by 128 as u8, because vpdpbusd multiplies u8 by s8;
// the offset comes back out as 128·Σq of the weight column, kept with the panels. The int32 sums are
// exact, so every int8 kernel gives the scalar twin's result bit for bit.
#pragma once
#include <cstdint>

#include "backend/cpu/gemm_packed.hpp"

namespace mmx::cpu {

enum class LowpType { BF16, Int8 };

constexpr int kLowpNr = 32;  // output features per panel
inline int lowp_group(LowpType t) { return t == LowpType::BF16 ? 2 : 4; }
// K rounded up to the AMX tile depth: 32 bf16 values or 64 int8 values (64 bytes).
int64_t lowp_k_padded(LowpType t, int64_t k);

// C[rows ≤ mr][ncols ≤ 32] (ldc) = (or +=, when `accumulate`) A[rows][kc] · panel block [kc / group][32][group].
// A is row-major (lda elements): bf16 as uint16 (C float) or u8 = q + 128 (C int32). kc is a multiple of
// the K padding; A has at least round_up(rows, 16) readable rows (AMX loads 16 at a time).
using LowpTileFn = void (*)(int rows, int64_t kc, const void* a, int64_t lda, const void* panel, void* c,
                            int64_t ldc, int ncols, bool accumulate);
struct LowpKernel {
  const char* name;  // "amx-bf16", "avx512-bf16", "scalar-bf16", "amx-int8", "avx512-vnni", "avx-vnni", "scalar-int8"
  LowpType type;
  int mr;                 // rows per tile
  int64_t k_block_bytes;  // the driver's K block, in bytes of a row of A
  LowpTileFn tile;
  void (*prepare)();      // run on a thread before its first tile (AMX: load the tile configuration), or nullptr
};

// The fastest kernel this CPU runs for `type`, or nullptr when it has no unit for it (the caller widens to
// f32). Chosen once, from cpu_features(); MMX_GEMM_LOWP=<name> picks another that the CPU runs (tests,
// benchmarks), MMX_GEMM_LOWP=none none at all (the f32 fall-back). The one place the low-precision paths
// are dispatched.
const LowpKernel* lowp_kernel(LowpType type);
// By name, when this CPU runs it (the scalar twins always), else nullptr.
const LowpKernel* lowp_kernel_named(const char* name);
// What lowp_kernel(type) is missing, for the fall-back notice: "AMX or AVX512_BF16", ...
const char* lowp_units(LowpType type);

// The tiles (isa/gemm_lowp_avx512.cpp, isa/gemm_amx.cpp, isa/gemm_avx_vnni.cpp, gemm_lowp.cpp).
void tile_bf16_avx512(int rows, int64_t kc, const void* a, int64_t lda, const void* panel, void* c, int64_t ldc,
                      int ncols, bool accumulate);
void tile_int8_avx512(int rows, int64_t kc, const void* a, int64_t lda, const void* panel, void* c, int64_t ldc,
                      int ncols, bool accumulate);
void tile_int8_avx_vnni(int rows, int64_t kc, const void* a, int64_t lda, const void* panel, void* c, int64_t ldc,
                        int ncols, bool accumulate);
void tile_bf16_amx(int rows, int64_t kc, const void* a, int64_t lda, const void* panel, void* c, int64_t ldc,
                   int ncols, bool accumulate);
void tile_int8_amx(int rows, int64_t kc, const void* a, int64_t lda, const void* panel, void* c, int64_t ldc,
                   int ncols, bool accumulate);
void amx_prepare();
void tile_bf16_scalar(int rows, int64_t kc, const void* a, int64_t lda, const void* panel, void* c, int64_t ldc,
                      int ncols, bool accumulate);
void tile_int8_scalar(int rows, int64_t kc, const void* a, int64_t lda, const void* panel, void* c, int64_t ldc,
                      int ncols, bool accumulate);

// A weight [N, K] (F32, F16 or BF16) in low-precision panels.
struct LowpWeight {
  LowpType type = LowpType::BF16;
  int64_t n = 0, k = 0, k_padded = 0;
  const void* panels = nullptr;  // ceil(N / 32) panels of Kp × 32 values (uint16 bf16 or int8)
  const float* scales = nullptr;  // int8: sw[N]
  const int32_t* offsets = nullptr;  // int8: 128·Σq per feature [N]
};
// Bytes of the panels of an [n, k] weight.
int64_t lowp_panel_bytes(LowpType type, int64_t n, int64_t k);
// Packs `weight` into `panels` (lowp_panel_bytes); int8 also fills scales[n] and offsets[n]. All threads.
void pack_lowp_weight(const Tensor& weight, LowpType type, void* panels, float* scales, int32_t* offsets);

// Rows of A (f32, lda) as the kernels read them: bf16 (round to nearest even) or u8 = q + 128 with the
// row scales sa[m]; `dst` has ld = Kp and zeros (bf16) / 128 (u8) past K. All threads.
void convert_rows_bf16(const float* a, int64_t lda, int64_t m, int64_t k, int64_t kp, uint16_t* dst);
void quantize_rows_int8(const float* a, int64_t lda, int64_t m, int64_t k, int64_t kp, uint8_t* dst, float* scales);

// C[m, n] (ldc) = epilogue(A[m, k] (f32, lda) · Wᵀ) through `kernel`.
void gemm_lowp(const LowpKernel& kernel, int64_t m, const float* a, int64_t lda, const LowpWeight& w, float* c,
               int64_t ldc, const GemmEpilogue& epilogue);
// The same from rows already converted (convert_rows_bf16 / quantize_rows_int8, ld = Kp), in a buffer of
// lowp_rows_bytes (AMX reads whole 16-row tiles: rows past m up to a multiple of 32 must be readable).
int64_t lowp_rows_bytes(LowpType type, int64_t m, int64_t kp);
void gemm_lowp_rows(const LowpKernel& kernel, int64_t m, const void* a_rows, const float* row_scales,
                    const LowpWeight& w, float* c, int64_t ldc, const GemmEpilogue& epilogue);

}  // namespace mmx::cpu
