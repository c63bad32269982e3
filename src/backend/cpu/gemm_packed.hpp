// mmx's own GEMM for nn.Linear: C = A·Wᵀ with the weight W [N, K] laid out in panels of NR output
// features (k-major inside a panel), so the micro-kernel streams it with aligned vector loads and the
// activations are the only operand packed per call. Weights are packed once at load (f32) or per call
// straight from their stored f16/bf16 (SDXL's mapped files), and bias, residual and activation are
// applied to each output tile while it is still in L1.
#pragma once
#include <cstdint>
#include <functional>

#include "backend/ops.hpp"

namespace mmx::cpu {

// C[rows, ncols] (ldc) = Ap[kc][rows] · Bp[kc][nr], added to C when `accumulate`; rows ≤ mr, ncols ≤ nr.
using GemmTileFn = void (*)(int rows, int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc,
                            int ncols, bool accumulate);
struct GemmKernel {
  const char* name;
  int mr, nr;  // the largest tile
  GemmTileFn tile;
};
// The widest micro-kernel this CPU runs (AVX-512, else AVX2 + FMA), or nullptr: callers then use
// dnnl_sgemm. MMX_GEMM=avx2|dnnl picks a narrower one (benchmarks, tests).
const GemmKernel* gemm_kernel();
const GemmKernel* gemm_kernel_named(const char* name);  // "avx512", "avx2"; nullptr if the CPU lacks it

void gemm_tile_avx512(int rows, int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc, int ncols,
                      bool accumulate);
void gemm_tile_avx2(int rows, int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc, int ncols,
                    bool accumulate);

// Rows [row0, row0 + rows) × columns [p0, p0 + kc) of a row-major A (lda), micro-tile by micro-tile in
// the order the kernel reads them: rows·kc floats.
void pack_rows(const float* a, int64_t lda, int64_t row0, int64_t rows, int64_t p0, int64_t kc, int mr, float* dst);

// One panel: rows [row0, row0 + rows) of a weight with rows of k values ld apart (F32, F16 or BF16) →
// dst[k][nr], zero past `rows`; AVX2 + F16C 8 × 8 transposes (isa/pack_avx2.cpp).
void pack_panel_avx2(const void* weight, DType dtype, int64_t k, int64_t ld, int64_t row0, int64_t rows, int nr,
                     float* dst);

// One micro-tile of r ≤ 16 rows of A (lda), kc columns → dst[kc][r] (isa/pack_avx2.cpp).
void pack_tile_rows_avx2(const float* a, int64_t lda, int r, int64_t kc, float* dst);

// Floats that pack_weight_panels writes for an [n, k] weight: ceil(n / nr) panels of k × nr.
int64_t packed_panel_floats(int64_t n, int64_t k, int nr);
// weight [N, K] (F32, F16 or BF16) → panels; columns past N are zero. Runs on all threads.
void pack_weight_panels(const Tensor& weight, int nr, float* dst);

// How a packed GEMM of `micro_tiles` row tiles × `panels` weight panels is cut into tasks: row bands ×
// column groups (one of the two is 1). Shared by the f32 and the low-precision drivers.
struct GemmTasks {
  int64_t row_tasks, col_tasks;
};
GemmTasks plan_gemm_tasks(int64_t micro_tiles, int64_t panels);

struct GemmEpilogue {
  const float* bias = nullptr;      // [n]
  const float* row_bias = nullptr;  // [m] (a convolution's bias: one per output channel = row of C)
  const float* residual = nullptr;  // [m, n] with leading dimension ld_residual
  int64_t ld_residual = 0;
  ops::Activation act = ops::Activation::Identity;
};
// C[m, n] (ldc) = act(A[m, k] (lda) · Wᵀ + bias + residual), W as panels packed for `kernel`. With
// `a_packed` (from pack_row_operand) the rows of A are read from there and `a` is not used.
void gemm_packed(const GemmKernel& kernel, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
                 const float* panels, float* c, int64_t ldc, const GemmEpilogue& epilogue,
                 const float* a_packed = nullptr);

// The same product when the column panels are made on demand (a convolution's image columns): for each
// K block, each thread fills one panel's block at a time into its own buffer with fill(j, p0, kc, dst)
// and runs every row tile over it, so the panels never go through memory and the K block of A stays in
// L2 for all of the thread's panels. `a_packed` from pack_row_operand.
void gemm_packed_fill_columns(const GemmKernel& kernel, int64_t m, int64_t n, int64_t k, const float* a_packed,
                              const std::function<void(int64_t panel, int64_t p0, int64_t kc, float* dst)>& fill,
                              float* c, int64_t ldc, const GemmEpilogue& epilogue);

// A whole row operand [m, k] (F32, F16 or BF16, e.g. a convolution's weight) packed once for every K
// block and micro-tile gemm_packed visits: m·k floats. Runs on all threads.
void pack_row_operand(const Tensor& a, int mr, float* dst);

// The epilogue on a finished tile of C: rows [row0, row0 + rows) × columns [col0, col0 + ncols).
void apply_epilogue(const GemmEpilogue& ep, int64_t row0, int rows, int64_t col0, int ncols, float* c, int64_t ldc);

// The activation over n floats on the calling thread (elementwise.cpp; the same arithmetic as activation()).
void activation_span(float* x, int64_t n, ops::Activation act);

}  // namespace mmx::cpu
