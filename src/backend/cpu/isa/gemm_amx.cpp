// The AMX micro-kernels: a tile of up to 32 rows × 32 columns in four 16 × 16 accumulator tiles (tmm0–3),
// fed per step by two 16-row tiles of A (tmm4–5: 64 bytes of K per row) and the panel's two 16-column
// halves (tmm6–7: 16 K groups of 64 bytes, 128 bytes apart in the panel). One tdpbf16ps / tdpbusd does
// 16 × 16 × 32 (bf16) or 16 × 16 × 64 (int8) multiply-adds.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "backend/cpu/gemm_lowp.hpp"

namespace mmx::cpu {

namespace {

// The tile configuration (palette 1): every tile 16 rows of 64 bytes.
struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

template <class T>
using Acc = T[32 * 32];

// Full tiles go straight between C and the accumulators; a partial one (rows or columns short) through a
// 32 × 32 buffer, of which only the tile's part is added to C.
template <bool Int8, bool Two>
__attribute__((target("amx-tile,amx-bf16,amx-int8"))) void tile_amx(int rows, int64_t kc, const void* a, int64_t lda,
                                                                       const void* panel, void* c, int64_t ldc,
                                                                       int ncols, bool accumulate) {
  using T = std::conditional_t<Int8, int32_t, float>;
  const int64_t esz = Int8 ? 1 : 2, step = 64 / esz;  // K values per tile row
  const char* A = static_cast<const char*>(a);
  const char* B = static_cast<const char*>(panel);
  T* C = static_cast<T*>(c);
  const bool direct = ncols == 32 && rows == (Two ? 32 : 16);
  const int64_t c_stride = ldc * int64_t(sizeof(T));
  if (direct && accumulate) {
    _tile_loadd(0, C, c_stride);
    _tile_loadd(1, C + 16, c_stride);
    if constexpr (Two) {
      _tile_loadd(2, C + 16 * ldc, c_stride);
      _tile_loadd(3, C + 16 * ldc + 16, c_stride);
    }
  } else {
    _tile_zero(0);
    _tile_zero(1);
    if constexpr (Two) {
      _tile_zero(2);
      _tile_zero(3);
    }
  }
  const int64_t a_stride = lda * esz;
  for (int64_t p = 0; p < kc; p += step) {
    _tile_loadd(4, A + p * esz, a_stride);
    _tile_loadd(6, B, 128);
    _tile_loadd(7, B + 64, 128);
    if constexpr (Int8) {
      _tile_dpbusd(0, 4, 6);
      _tile_dpbusd(1, 4, 7);
    } else {
      _tile_dpbf16ps(0, 4, 6);
      _tile_dpbf16ps(1, 4, 7);
    }
    if constexpr (Two) {
      _tile_loadd(5, A + 16 * a_stride + p * esz, a_stride);
      if constexpr (Int8) {
        _tile_dpbusd(2, 5, 6);
        _tile_dpbusd(3, 5, 7);
      } else {
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
      }
    }
    B += 16 * 128;  // 16 K groups of the panel
  }
  if (direct) {
    _tile_stored(0, C, c_stride);
    _tile_stored(1, C + 16, c_stride);
    if constexpr (Two) {
      _tile_stored(2, C + 16 * ldc, c_stride);
      _tile_stored(3, C + 16 * ldc + 16, c_stride);
    }
    return;
  }
  alignas(64) Acc<T> buffer;
  _tile_stored(0, buffer, 128);
  _tile_stored(1, buffer + 16, 128);
  if constexpr (Two) {
    _tile_stored(2, buffer + 16 * 32, 128);
    _tile_stored(3, buffer + 16 * 32 + 16, 128);
  }
  for (int r = 0; r < rows; ++r)
    for (int col = 0; col < ncols; ++col) C[r * ldc + col] = accumulate ? C[r * ldc + col] + buffer[r * 32 + col] : buffer[r * 32 + col];
}

}  // namespace

__attribute__((target("amx-tile"))) void amx_prepare() {
  // A thread keeps its tile configuration until it is released; oneDNN's AMX kernels (not used by mmx)
  // would load their own, so it is loaded again at the start of every parallel chunk.
  TileConfig config;
  for (int t = 0; t < 8; ++t) {
    config.colsb[t] = 64;
    config.rows[t] = 16;
  }
  // Through asm with the configuration as a memory operand: GCC 12 drops the stores that fill it when
  // it is passed to _tile_loadconfig (measured: only the palette byte was written).
  asm volatile("ldtilecfg %0" ::"m"(config));
}

void tile_bf16_amx(int rows, int64_t kc, const void* a, int64_t lda, const void* panel, void* c, int64_t ldc,
                   int ncols, bool accumulate) {
  if (rows > 16) tile_amx<false, true>(rows, kc, a, lda, panel, c, ldc, ncols, accumulate);
  else tile_amx<false, false>(rows, kc, a, lda, panel, c, ldc, ncols, accumulate);
}

void tile_int8_amx(int rows, int64_t kc, const void* a, int64_t lda, const void* panel, void* c, int64_t ldc,
                   int ncols, bool accumulate) {
  if (rows > 16) tile_amx<true, true>(rows, kc, a, lda, panel, c, ldc, ncols, accumulate);
  else tile_amx<true, false>(rows, kc, a, lda, panel, c, ldc, ncols, accumulate);
}

}  // namespace mmx::cpu
