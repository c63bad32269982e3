// exp and erf written so that the compiler vectorises loops over them (no calls, no branches).
#pragma once
#include <bit>
#include <cstdint>

namespace mmx::cpu {

// e^x for x ≤ 88: x = n·ln2 + r with |r| ≤ ln2/2, e^r by its Taylor series to degree 7 (truncation
// < 3e-9 relative), 2^n put into the exponent bits. Within 2 ulp of expf; below −87 it returns
// e^−87 ≈ 1.6e-38 instead of a denormal or 0.
__attribute__((always_inline)) inline float exp_approx(float x) {
  x = x < -87.f ? -87.f : x;
  const float t = x * 1.44269504088896341f;
  const int32_t ni = static_cast<int32_t>(t + __builtin_copysignf(0.5f, t));  // round half away from zero
  const float n = static_cast<float>(ni);
  const float r = (x - n * 0.693145751953125f) - n * 1.42860682030941723212e-6f;  // ln2 split in two parts
  float p = 1.f / 5040.f;
  p = p * r + 1.f / 720.f;
  p = p * r + 1.f / 120.f;
  p = p * r + 1.f / 24.f;
  p = p * r + 1.f / 6.f;
  p = p * r + 0.5f;
  p = p * r + 1.f;
  p = p * r + 1.f;
  return p * std::bit_cast<float>((ni + 127) << 23);  // 2^n
}

// erf by Abramowitz & Stegun 7.1.26 (absolute error ≤ 1.5e-7), the approximation PyTorch's own
// vectorised CPU GELU uses, so mmx's GELU lands closer to the reference than an exact erf would.
__attribute__((always_inline)) inline float erf_approx(float x) {
  const float abs = __builtin_fabsf(x);
  // min(|x|, 9): erf(9) rounds to 1, and exp's argument stays >= -81. Written so that no branch of it
  // folds to a constant, which would stop the compiler from vectorising the loop.
  const float a = abs - (abs > 9.f ? abs - 9.f : 0.f);
  const float t = 1.f / (1.f + 0.3275911f * a);
  float p = 1.061405429f;
  p = p * t - 1.453152027f;
  p = p * t + 1.421413741f;
  p = p * t - 0.284496736f;
  p = p * t + 0.254829592f;
  return __builtin_copysignf(1.f - p * t * exp_approx(-a * a), x);
}

}  // namespace mmx::cpu
