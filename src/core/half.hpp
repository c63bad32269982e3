// f16 / bf16 <-> f32 conversion of whole buffers (F16C when the CPU has it, exact bit manipulation otherwise).
#pragma once
#include <cstddef>
#include <cstdint>

namespace mmx {

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);  // round to nearest even
inline float bf16_to_f32(uint16_t b) {
  uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  __builtin_memcpy(&f, &u, 4);
  return f;
}
uint16_t f32_to_bf16(float f);  // round to nearest even, NaN kept

void f16_to_f32(const uint16_t* src, float* dst, size_t n);
void f32_to_f16(const float* src, uint16_t* dst, size_t n);  // round to nearest even, NaN → 0x7e00 | sign
void bf16_to_f32(const uint16_t* src, float* dst, size_t n);
void f32_to_bf16(const float* src, uint16_t* dst, size_t n);  // round to nearest even, NaN kept (as one value)

}  // namespace mmx
