// The driver of the packed GEMM (gemm_packed.hpp): splits C into tasks of whole output tiles, packs
// each task's rows of A per K block, runs the micro-kernel over the task's weight panels and applies
// the epilogue on the last K block. A task owns its C tiles for every K block, so no barrier is needed.
#include "backend/cpu/gemm_packed.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "backend/cpu/cpu_ops.hpp"
#include "core/cpu.hpp"
#include "core/half.hpp"
#include "core/thread_pool.hpp"

namespace mmx::cpu {

namespace {

constexpr GemmKernel kAvx512{"avx512", 14, 32, gemm_tile_avx512};
constexpr GemmKernel kAvx2{"avx2", 6, 16, gemm_tile_avx2};

// K is cut into near-equal blocks of at most this many: a 14-row slice of A (22 KB) stays in L1 and a
// weight panel's block (48 KB) in L2 while the kernel sweeps them.
constexpr int64_t kMaxKBlock = 384;
// A task covers at most this many micro-tiles of rows (112 rows for AVX-512: 168 KB of packed A in L2).
constexpr int64_t kMicroTilesPerTask = 8;
// A micro-tile of A sweeps this many weight panels (768 KB of AVX-512 panels at K block 384) before the
// next micro-tile sweeps them again from L2 (8, 16 and 32 measured within noise of each other).
constexpr int64_t kPanelsPerBlock = 16;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The calling thread's packed rows of A.
float* thread_scratch(int64_t floats) {
  thread_local ScratchBuffer buffer;
  return buffer.get(floats, "packing a GEMM operand");
}

// The epilogue's arithmetic, compiled twice: with AVX2 for the CPUs that have it, and plain for the
// low-precision scalar twins, which also run (in tests) where AVX2 is missing.
__attribute__((always_inline)) inline void epilogue_body(const GemmEpilogue& ep, int64_t row0, int rows, int64_t col0, int ncols, float* c,
                          int64_t ldc) {
  for (int r = 0; r < rows; ++r) {
    float* row = c + (row0 + r) * ldc + col0;
    if (ep.bias)
      for (int j = 0; j < ncols; ++j) row[j] += ep.bias[col0 + j];
    if (ep.row_bias) {
      const float add = ep.row_bias[row0 + r];
      for (int j = 0; j < ncols; ++j) row[j] += add;
    }
    if (ep.residual) {
      const float* res = ep.residual + (row0 + r) * ep.ld_residual + col0;
      for (int j = 0; j < ncols; ++j) row[j] += res[j];
    }
    if (ep.act != ops::Activation::Identity) activation_span(row, ncols, ep.act);
  }
}
__attribute__((target("avx2"))) void epilogue_avx2(const GemmEpilogue& ep, int64_t row0, int rows, int64_t col0,
                                                   int ncols, float* c, int64_t ldc) {
  epilogue_body(ep, row0, rows, col0, ncols, c, ldc);
}
void epilogue_plain(const GemmEpilogue& ep, int64_t row0, int rows, int64_t col0, int ncols, float* c, int64_t ldc) {
  epilogue_body(ep, row0, rows, col0, ncols, c, ldc);
}

}  // namespace

void apply_epilogue(const GemmEpilogue& ep, int64_t row0, int rows, int64_t col0, int ncols, float* c, int64_t ldc) {
  static const bool avx2 = cpu_features().avx2;
  if (avx2) epilogue_avx2(ep, row0, rows, col0, ncols, c, ldc);
  else epilogue_plain(ep, row0, rows, col0, ncols, c, ldc);
}

void pack_rows(const float* a, int64_t lda, int64_t row0, int64_t rows, int64_t p0, int64_t kc, int mr, float* dst) {
  // Each micro-tile of r ≤ mr rows becomes kc groups of r consecutive floats (the broadcast order).
  static const bool avx2 = cpu_features().avx2;
  for (int64_t i0 = 0; i0 < rows; i0 += mr) {
    const int r = static_cast<int>(std::min<int64_t>(mr, rows - i0));
    const float* src = a + (row0 + i0) * lda + p0;
    if (avx2) {
      pack_tile_rows_avx2(src, lda, r, kc, dst);
      dst += r * kc;
      continue;
    }
    for (int rr = 0; rr < r; ++rr) {
      const float* s = src + rr * lda;
      float* d = dst + rr;
      for (int64_t p = 0; p < kc; ++p) d[p * r] = s[p];
    }
    dst += r * kc;
  }
}

const GemmKernel* gemm_kernel_named(const char* name) {
  const CpuFeatures& f = cpu_features();
  if (std::strcmp(name, "avx512") == 0) return f.avx512f && f.fma ? &kAvx512 : nullptr;
  if (std::strcmp(name, "avx2") == 0) return f.avx2 && f.fma ? &kAvx2 : nullptr;
  return nullptr;
}

const GemmKernel* gemm_kernel() {
  static const GemmKernel* const chosen = [] {
    const char* forced = std::getenv("MMX_GEMM");
    if (forced && *forced) {
      if (std::strcmp(forced, "dnnl") == 0) return static_cast<const GemmKernel*>(nullptr);
      if (const GemmKernel* k = gemm_kernel_named(forced)) return k;
    }
    if (const GemmKernel* k = gemm_kernel_named("avx512")) return k;
    return gemm_kernel_named("avx2");
  }();
  return chosen;
}

int64_t packed_panel_floats(int64_t n, int64_t k, int nr) { return ceil_div(n, nr) * k * nr; }

void pack_weight_panels(const Tensor& weight, int nr, float* dst) {
  const int64_t n = weight.dim(0), k = weight.dim(1), panels = ceil_div(n, nr);
  const DType dtype = weight.dtype();
  static const bool vector = cpu_features().avx2 && cpu_features().f16c;
  if (vector) {
    parallel_for(panels, 1, [&](int64_t j0, int64_t j1) {
      for (int64_t j = j0; j < j1; ++j)
        pack_panel_avx2(weight.raw(), dtype, k, k, j * nr, std::min<int64_t>(nr, n - j * nr), nr, dst + j * k * nr);
    });
    return;
  }
  parallel_for(panels, 1, [&](int64_t j0, int64_t j1) {
    thread_local std::vector<float> row;
    row.resize(static_cast<size_t>(k));
    for (int64_t j = j0; j < j1; ++j) {
      float* panel = dst + j * k * nr;
      for (int c = 0; c < nr; ++c) {
        const int64_t col = j * nr + c;
        const float* src = row.data();
        if (col >= n) {
          for (int64_t p = 0; p < k; ++p) panel[p * nr + c] = 0.f;
          continue;
        }
        if (dtype == DType::F32) src = weight.data<float>() + col * k;
        else if (dtype == DType::F16) f16_to_f32(static_cast<const uint16_t*>(weight.raw()) + col * k, row.data(), k);
        else bf16_to_f32(static_cast<const uint16_t*>(weight.raw()) + col * k, row.data(), k);
        for (int64_t p = 0; p < k; ++p) panel[p * nr + c] = src[p];
      }
    }
  });
}

namespace {
// K is split into k_blocks near-equal blocks of at most kMaxKBlock; block p starts at p·kc_max.
int64_t k_block_size(int64_t k) {
  const int64_t k_blocks = std::max<int64_t>(1, ceil_div(k, kMaxKBlock));
  return ceil_div(k, k_blocks);
}
}  // namespace

void pack_row_operand(const Tensor& a, int mr, float* dst) {
  // Layout: K block after K block (block p at p0·m), micro-tile after micro-tile inside it (tile i0 at
  // i0·kc): exactly what pack_rows would write per task, for all rows.
  const int64_t m = a.dim(0), k = a.dim(1), kc_max = k_block_size(k), micro = ceil_div(m, mr);
  const int64_t k_blocks = ceil_div(k, kc_max);
  const DType dtype = a.dtype();
  parallel_for(k_blocks * micro, 1, [&](int64_t first, int64_t end) {
    thread_local std::vector<float> rows;  // a tile's rows widened to f32
    rows.resize(static_cast<size_t>(mr * kc_max));
    for (int64_t task = first; task < end; ++task) {
      const int64_t kb = task / micro, t = task % micro;
      const int64_t p0 = kb * kc_max, kc = std::min(kc_max, k - p0), i0 = t * mr;
      const int r = static_cast<int>(std::min<int64_t>(mr, m - i0));
      const float* src = rows.data();
      int64_t ld = kc;
      if (dtype == DType::F32) {
        src = a.data<float>() + i0 * k + p0;
        ld = k;
      } else {
        for (int rr = 0; rr < r; ++rr) {
          const uint16_t* half = static_cast<const uint16_t*>(a.raw()) + (i0 + rr) * k + p0;
          if (dtype == DType::F16) f16_to_f32(half, rows.data() + rr * kc, kc);
          else bf16_to_f32(half, rows.data() + rr * kc, kc);
        }
      }
      pack_rows(src, ld, 0, r, 0, kc, mr, dst + p0 * m + i0 * kc);
    }
  });
}

void gemm_packed_fill_columns(const GemmKernel& kernel, int64_t m, int64_t n, int64_t k, const float* a_packed,
                              const std::function<void(int64_t panel, int64_t p0, int64_t kc, float* dst)>& fill,
                              float* c, int64_t ldc, const GemmEpilogue& epilogue) {
  // Panels go in groups of kPanelsPerGroup: the group's C tiles (m × 4 × nr) stay in L2 across the K
  // blocks instead of travelling to memory and back once per block, and each K block of A is read
  // from L2 once per panel.
  constexpr int64_t kPanelsPerGroup = 4;
  const int mr = kernel.mr, nr = kernel.nr;
  const int64_t panel_count = ceil_div(n, nr), kc_max = k_block_size(k);
  const int64_t groups = ceil_div(panel_count, kPanelsPerGroup);
  parallel_for(groups, 1, [&](int64_t g0, int64_t g1) {
    thread_local ScratchBuffer buffer;
    float* panels = buffer.get(kPanelsPerGroup * kc_max * nr, "column panels");
    for (int64_t g = g0; g < g1; ++g) {
      const int64_t j0 = g * kPanelsPerGroup, j1 = std::min(panel_count, j0 + kPanelsPerGroup);
      for (int64_t p0 = 0; p0 < k; p0 += kc_max) {
        const int64_t kc = std::min(kc_max, k - p0);
        const bool first = p0 == 0, last = p0 + kc == k;
        for (int64_t j = j0; j < j1; ++j) fill(j, p0, kc, panels + (j - j0) * kc_max * nr);
        for (int64_t j = j0; j < j1; ++j) {
          const int64_t col0 = j * nr;
          const int ncols = static_cast<int>(std::min<int64_t>(nr, n - col0));
          const float* panel = panels + (j - j0) * kc_max * nr;
          for (int64_t i0 = 0; i0 < m; i0 += mr) {
            const int rows = static_cast<int>(std::min<int64_t>(mr, m - i0));
            kernel.tile(rows, kc, a_packed + p0 * m + i0 * kc, panel, c + i0 * ldc + col0, ldc, ncols, !first);
            if (last) apply_epilogue(epilogue, i0, rows, col0, ncols, c, ldc);
          }
        }
      }
    }
  });
}

GemmTasks plan_gemm_tasks(int64_t micro_tiles, int64_t panels) {
  // As many tasks as the pool wants chunks (a few per thread), so a descheduled thread's share is small.
  const int64_t wanted = parallel_chunks_wanted();
  // Small M (the lab's short texts): every task takes all rows and a share of the weight's panels, so each
  // weight byte is read once. Larger M: tasks are bands of rows, at least as many as the pool wants.
  if (micro_tiles > 2 * kMicroTilesPerTask)
    return {std::min(micro_tiles, std::max(ceil_div(micro_tiles, kMicroTilesPerTask), wanted)), 1};
  return {1, std::min<int64_t>(panels, wanted)};
}

void gemm_packed(const GemmKernel& kernel, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
                 const float* panels, float* c, int64_t ldc, const GemmEpilogue& epilogue, const float* a_packed) {
  if (m == 0 || n == 0) return;
  const int mr = kernel.mr, nr = kernel.nr;
  const int64_t micro = ceil_div(m, mr), panel_count = ceil_div(n, nr);
  const GemmTasks plan = plan_gemm_tasks(micro, panel_count);
  const int64_t row_tasks = plan.row_tasks, col_tasks = plan.col_tasks;
  const int64_t kc_max = k_block_size(k);
  const int64_t tasks = row_tasks * col_tasks;
  const int64_t max_task_rows = ceil_div(micro, row_tasks) * mr;
  parallel_for(tasks, 1, [&](int64_t first_task, int64_t end_task) {
    for (int64_t t = first_task; t < end_task; ++t) {
      const int64_t rt = t / col_tasks, ct = t % col_tasks;
      const int64_t row0 = std::min(m, rt * micro / row_tasks * mr), row1 = std::min(m, (rt + 1) * micro / row_tasks * mr);
      const int64_t j0 = ct * panel_count / col_tasks, j1 = (ct + 1) * panel_count / col_tasks;
      if (row0 >= row1 || j0 >= j1) continue;
      float* scratch = a_packed ? nullptr : thread_scratch(max_task_rows * kc_max);
      for (int64_t p0 = 0; p0 < k; p0 += kc_max) {
        const int64_t kc = std::min(kc_max, k - p0);
        const bool first = p0 == 0, last = p0 + kc == k;
        const float* packed_a = a_packed ? a_packed + p0 * m + row0 * kc : scratch;
        if (!a_packed) pack_rows(a, lda, row0, row1 - row0, p0, kc, mr, scratch);
        // A micro-tile of rows stays in L1 while it sweeps a block of panels, which stays in L2 for the
        // task's next micro-tile.
        for (int64_t jb = j0; jb < j1; jb += kPanelsPerBlock) {
          const int64_t jb1 = std::min(j1, jb + kPanelsPerBlock);
          const float* ap = packed_a;
          for (int64_t i0 = row0; i0 < row1; i0 += mr) {
            const int rows = static_cast<int>(std::min<int64_t>(mr, row1 - i0));
            for (int64_t j = jb; j < jb1; ++j) {
              const int64_t col0 = j * nr;
              const int ncols = static_cast<int>(std::min<int64_t>(nr, n - col0));
              kernel.tile(rows, kc, ap, panels + j * k * nr + p0 * nr, c + i0 * ldc + col0, ldc, ncols, !first);
              if (last) apply_epilogue(epilogue, i0, rows, col0, ncols, c, ldc);
            }
            ap += rows * kc;
          }
        }
      }
    }
  });
}

}  // namespace mmx::cpu
