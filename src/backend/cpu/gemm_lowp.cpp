// The low-precision GEMM (gemm_lowp.hpp): kernel dispatch, weight packing, activation conversion, the
// driver, and the scalar twins every vector kernel is tested against.
#include "backend/cpu/gemm_lowp.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "backend/cpu/cpu_ops.hpp"
#include "core/cpu.hpp"
#include "core/half.hpp"
#include "core/thread_pool.hpp"

namespace mmx::cpu {

// Vector versions of the row conversions (isa/gemm_lowp_avx512.cpp).
void convert_row_bf16_avx512(const float* src, int64_t k, uint16_t* dst);
float quantize_row_int8_avx512(const float* src, int64_t k, uint8_t* dst);

namespace {

// K blocks of at most 1024 bytes per row for the vector kernels (a 14-row slice of A, 14 KB, stays in L1
// while it sweeps a block of panels in L2) and 2048 for AMX, whose accumulator tiles would otherwise go
// to C and back once more per block (measured on gemm-4096x3072x768, 2 threads: AMX-BF16 1024 B 777,
// 2048 B 1097, 8192 B 1121 GFLOP/s, but 4096x768x3072 best at 2048; AVX512-VNNI 512 B 585, 1024 B 829,
// 2048 B 672 GOP/s).
constexpr int64_t kVectorKBlock = 1024, kAmxKBlock = 2048;
constexpr LowpKernel kAmxBf16{"amx-bf16", LowpType::BF16, 32, kAmxKBlock, tile_bf16_amx, amx_prepare};
constexpr LowpKernel kAvx512Bf16{"avx512-bf16", LowpType::BF16, 14, kVectorKBlock, tile_bf16_avx512, nullptr};
constexpr LowpKernel kScalarBf16{"scalar-bf16", LowpType::BF16, 4, kVectorKBlock, tile_bf16_scalar, nullptr};
constexpr LowpKernel kAmxInt8{"amx-int8", LowpType::Int8, 32, kAmxKBlock, tile_int8_amx, amx_prepare};
constexpr LowpKernel kAvx512Vnni{"avx512-vnni", LowpType::Int8, 14, kVectorKBlock, tile_int8_avx512, nullptr};
constexpr LowpKernel kAvxVnni{"avx-vnni", LowpType::Int8, 6, kVectorKBlock, tile_int8_avx_vnni, nullptr};
constexpr LowpKernel kScalarInt8{"scalar-int8", LowpType::Int8, 4, kVectorKBlock, tile_int8_scalar, nullptr};

constexpr int64_t kPanelsPerBlock = 16;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }
int64_t element_bytes(LowpType t) { return t == LowpType::BF16 ? 2 : 1; }
int64_t k_unit(LowpType t) { return t == LowpType::BF16 ? 32 : 64; }  // values in 64 bytes

bool avx512_converts() { return cpu_features().avx512_bf16; }
bool avx512_quantizes() { return cpu_features().avx512bw; }

}  // namespace

int64_t lowp_k_padded(LowpType t, int64_t k) { return round_up(std::max<int64_t>(k, 1), k_unit(t)); }

int64_t lowp_panel_bytes(LowpType type, int64_t n, int64_t k) {
  return ceil_div(n, kLowpNr) * lowp_k_padded(type, k) * kLowpNr * element_bytes(type);
}

const LowpKernel* lowp_kernel_named(const char* name) {
  const CpuFeatures& f = cpu_features();
  const struct {
    const LowpKernel* kernel;
    bool runs;
  } all[] = {{&kAmxBf16, f.amx_bf16},        {&kAvx512Bf16, f.avx512_bf16}, {&kScalarBf16, true},
             {&kAmxInt8, f.amx_int8},        {&kAvx512Vnni, f.avx512_vnni}, {&kAvxVnni, f.avx_vnni},
             {&kScalarInt8, true}};
  for (const auto& k : all)
    if (std::strcmp(k.kernel->name, name) == 0) return k.runs ? k.kernel : nullptr;
  return nullptr;
}

const LowpKernel* lowp_kernel(LowpType type) {
  // The order of preference: AMX tiles, then 512-bit dot products, then 256-bit ones. The scalar twins are
  // for tests only (orders of magnitude slower than widening to f32), so they are never chosen here.
  static const LowpKernel* const chosen[2] = {
      [] {
        for (const char* name : {"amx-bf16", "avx512-bf16"})
          if (const LowpKernel* k = lowp_kernel_named(name)) return k;
        return static_cast<const LowpKernel*>(nullptr);
      }(),
      [] {
        for (const char* name : {"amx-int8", "avx512-vnni", "avx-vnni"})
          if (const LowpKernel* k = lowp_kernel_named(name)) return k;
        return static_cast<const LowpKernel*>(nullptr);
      }()};
  static const char* const forced_name = std::getenv("MMX_GEMM_LOWP");
  static const LowpKernel* const forced = forced_name && *forced_name ? lowp_kernel_named(forced_name) : nullptr;
  if (forced && forced->type == type) return forced;
  // "none": as a CPU without the units (the f32 fall-back, for tests and comparisons).
  if (forced_name && std::strcmp(forced_name, "none") == 0) return nullptr;
  return chosen[type == LowpType::BF16 ? 0 : 1];
}

const char* lowp_units(LowpType type) {
  return type == LowpType::BF16 ? "AMX-BF16 or AVX512_BF16" : "AMX-INT8, AVX512_VNNI or AVX-VNNI";
}

void pack_lowp_weight(const Tensor& weight, LowpType type, void* panels, float* scales, int32_t* offsets) {
  const int64_t n = weight.dim(0), k = weight.dim(1), kp = lowp_k_padded(type, k);
  const int64_t panel_count = ceil_div(n, kLowpNr);
  // A panel's 32 features are first rounded (bf16) or quantized (int8) row by row, with the same code as
  // the activations, into `rows` [32][Kp]; the panel is then that block transposed in 4-byte units (a
  // bf16 pair or an int8 quadruple per feature and K group).
  parallel_for(panel_count, 1, [&](int64_t j0, int64_t j1) {
    std::vector<float> wide(static_cast<size_t>(k));
    std::vector<uint32_t> rows(static_cast<size_t>(kLowpNr * kp * element_bytes(type) / 4));
    for (int64_t j = j0; j < j1; ++j) {
      for (int c = 0; c < kLowpNr; ++c) {
        const int64_t feature = j * kLowpNr + c;
        if (feature < n) widen_to_f32(weight, feature * k, k, wide.data());
        else std::fill(wide.begin(), wide.end(), 0.f);
        if (type == LowpType::BF16) {
          convert_rows_bf16(wide.data(), k, 1, k, kp, reinterpret_cast<uint16_t*>(rows.data()) + c * kp);
          continue;
        }
        uint8_t* q = reinterpret_cast<uint8_t*>(rows.data()) + c * kp;
        float scale = 0.f;
        quantize_rows_int8(wide.data(), k, 1, k, kp, q, &scale);
        int32_t sum = 0;
        for (int64_t p = 0; p < kp; ++p) {
          q[p] ^= 0x80;  // q + 128 as u8 → q as s8 (two's complement); the padding's 128 becomes 0
          sum += static_cast<int8_t>(q[p]);
        }
        if (feature < n) {
          scales[feature] = scale;
          offsets[feature] = 128 * sum;
        }
      }
      const int64_t groups = kp / lowp_group(type), row_words = groups;  // 4-byte words per row
      uint32_t* dst = static_cast<uint32_t*>(panels) + j * groups * kLowpNr;
      for (int64_t g = 0; g < groups; ++g)
        for (int c = 0; c < kLowpNr; ++c) dst[g * kLowpNr + c] = rows[c * row_words + g];
    }
  });
}

void convert_rows_bf16(const float* a, int64_t lda, int64_t m, int64_t k, int64_t kp, uint16_t* dst) {
  static const bool vector = avx512_converts();
  parallel_for(m, std::max<int64_t>(1, 4096 / std::max<int64_t>(k, 1)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      uint16_t* out = dst + r * kp;
      if (vector) convert_row_bf16_avx512(a + r * lda, k, out);
      else f32_to_bf16(a + r * lda, out, static_cast<size_t>(k));
      std::fill(out + k, out + kp, uint16_t(0));
    }
  });
}

// x ≈ sa·q with q = round-to-even(x · 127 / max|x|) in [−127, 127], stored as q + 128.
float quantize_row_int8_scalar(const float* src, int64_t k, uint8_t* dst) {
  float absmax = 0.f;
  for (int64_t p = 0; p < k; ++p) absmax = std::max(absmax, std::fabs(src[p]));
  const float inv = absmax > 0.f ? 127.f / absmax : 0.f;
  for (int64_t p = 0; p < k; ++p)
    dst[p] = static_cast<uint8_t>(static_cast<int>(std::clamp(std::nearbyint(src[p] * inv), -127.f, 127.f)) + 128);
  return absmax / 127.f;
}

void quantize_rows_int8(const float* a, int64_t lda, int64_t m, int64_t k, int64_t kp, uint8_t* dst, float* scales) {
  static const bool vector = avx512_quantizes();
  parallel_for(m, std::max<int64_t>(1, 4096 / std::max<int64_t>(k, 1)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      uint8_t* out = dst + r * kp;
      scales[r] = vector ? quantize_row_int8_avx512(a + r * lda, k, out) : quantize_row_int8_scalar(a + r * lda, k, out);
      std::fill(out + k, out + kp, uint8_t(128));
    }
  });
}

void tile_bf16_scalar(int rows, int64_t kc, const void* a, int64_t lda, const void* panel, void* c, int64_t ldc,
                      int ncols, bool accumulate) {
  const uint16_t* A = static_cast<const uint16_t*>(a);
  const uint16_t* B = static_cast<const uint16_t*>(panel);
  float* C = static_cast<float*>(c);
  for (int r = 0; r < rows; ++r)
    for (int col = 0; col < ncols; ++col) {
      float sum = 0.f;  // each product of two bf16 values is exact in f32
      for (int64_t p = 0; p < kc; ++p)
        sum += bf16_to_f32(A[r * lda + p]) * bf16_to_f32(B[(p / 2) * 64 + col * 2 + p % 2]);
      C[r * ldc + col] = accumulate ? C[r * ldc + col] + sum : sum;
    }
}

void tile_int8_scalar(int rows, int64_t kc, const void* a, int64_t lda, const void* panel, void* c, int64_t ldc,
                      int ncols, bool accumulate) {
  const uint8_t* A = static_cast<const uint8_t*>(a);
  const int8_t* B = static_cast<const int8_t*>(panel);
  int32_t* C = static_cast<int32_t*>(c);
  for (int r = 0; r < rows; ++r)
    for (int col = 0; col < ncols; ++col) {
      int32_t sum = 0;
      for (int64_t p = 0; p < kc; ++p) sum += int32_t(A[r * lda + p]) * int32_t(B[(p / 4) * 128 + col * 4 + p % 4]);
      C[r * ldc + col] = accumulate ? C[r * ldc + col] + sum : sum;
    }
}

void gemm_lowp(const LowpKernel& kernel, int64_t m, const float* a, int64_t lda, const LowpWeight& w, float* c,
               int64_t ldc, const GemmEpilogue& epilogue) {
  if (m == 0 || w.n == 0) return;
  const int64_t k = w.k, kp = w.k_padded, esz = element_bytes(w.type);
  // A, converted once for all tasks.
  thread_local ScratchBuffer rows_buffer, scales_buffer;
  uint8_t* rows = reinterpret_cast<uint8_t*>(rows_buffer.get(lowp_rows_bytes(w.type, m, kp) / 4, "low-precision activations"));
  float* row_scales = nullptr;
  if (w.type == LowpType::BF16) {
    convert_rows_bf16(a, lda, m, k, kp, reinterpret_cast<uint16_t*>(rows));
  } else {
    row_scales = scales_buffer.get(m, "activation scales");
    quantize_rows_int8(a, lda, m, k, kp, rows, row_scales);
  }
  std::memset(rows + m * kp * esz, 0, static_cast<size_t>((round_up(m, 32) - m) * kp * esz));
  gemm_lowp_rows(kernel, m, rows, row_scales, w, c, ldc, epilogue);
}

int64_t lowp_rows_bytes(LowpType type, int64_t m, int64_t kp) { return round_up(m, 32) * kp * element_bytes(type) + 64; }

void gemm_lowp_rows(const LowpKernel& kernel, int64_t m, const void* a_rows, const float* row_scales,
                    const LowpWeight& w, float* c, int64_t ldc, const GemmEpilogue& epilogue) {
  const int64_t n = w.n, kp = w.k_padded;
  if (m == 0 || n == 0) return;
  if (kernel.type != w.type) fail("gemm_lowp: the ", kernel.name, " kernel cannot read these panels");
  const int mr = kernel.mr;
  const int64_t esz = element_bytes(w.type);
  const uint8_t* rows = static_cast<const uint8_t*>(a_rows);

  const int64_t unit = k_unit(w.type);
  const int64_t k_blocks = ceil_div(kp * esz, kernel.k_block_bytes);
  const int64_t kc_max = round_up(ceil_div(kp, k_blocks), unit);
  const int64_t micro = ceil_div(m, mr), panel_count = ceil_div(n, kLowpNr);
  const GemmTasks plan = plan_gemm_tasks(micro, panel_count);
  const int64_t row_tasks = plan.row_tasks, col_tasks = plan.col_tasks;
  const uint8_t* panels = static_cast<const uint8_t*>(w.panels);
  parallel_for(row_tasks * col_tasks, 1, [&](int64_t first_task, int64_t end_task) {
    if (kernel.prepare) kernel.prepare();
    for (int64_t t = first_task; t < end_task; ++t) {
      const int64_t rt = t / col_tasks, ct = t % col_tasks;
      const int64_t row0 = std::min(m, rt * micro / row_tasks * mr), row1 = std::min(m, (rt + 1) * micro / row_tasks * mr);
      const int64_t j0 = ct * panel_count / col_tasks, j1 = (ct + 1) * panel_count / col_tasks;
      if (row0 >= row1 || j0 >= j1) continue;
      for (int64_t p0 = 0; p0 < kp; p0 += kc_max) {
        const int64_t kc = std::min(kc_max, kp - p0);
        const bool first = p0 == 0, last = p0 + kc == kp;
        for (int64_t jb = j0; jb < j1; jb += kPanelsPerBlock) {
          const int64_t jb1 = std::min(j1, jb + kPanelsPerBlock);
          for (int64_t i0 = row0; i0 < row1; i0 += mr) {
            const int tile_rows = static_cast<int>(std::min<int64_t>(mr, row1 - i0));
            for (int64_t j = jb; j < jb1; ++j) {
              const int64_t col0 = j * kLowpNr;
              const int ncols = static_cast<int>(std::min<int64_t>(kLowpNr, n - col0));
              float* ct_ptr = c + i0 * ldc + col0;
              kernel.tile(tile_rows, kc, rows + (i0 * kp + p0) * esz, kp, panels + (j * kp + p0) * kLowpNr * esz,
                          ct_ptr, ldc, ncols, !first);
              if (!last) continue;
              if (w.type == LowpType::Int8) {
                // The exact int32 sums, less the activations' offset of 128, scaled back: in place.
                for (int r = 0; r < tile_rows; ++r) {
                  float* out = ct_ptr + r * ldc;
                  const float sa = row_scales[i0 + r];
                  for (int col = 0; col < ncols; ++col) {
                    int32_t acc;
                    std::memcpy(&acc, out + col, sizeof acc);
                    out[col] = static_cast<float>(acc - w.offsets[col0 + col]) * (sa * w.scales[col0 + col]);
                  }
                }
              }
              apply_epilogue(epilogue, i0, tile_rows, col0, ncols, c, ldc);
            }
          }
        }
      }
    }
  });
}

}  // namespace mmx::cpu
