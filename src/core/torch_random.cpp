// torch 1.13's CPU normal sampling, reproduced to the bit. Checked against the fixture's
// torch.randn outputs (three seeds, sizes 4 to 32768) and, while writing it, against 163,840 values of
// the Debian torch on this machine. The float kernel's arithmetic is written out with the fused
// multiply-adds its compiled AVX2 code performs (GCC contracts a product whose only use is an
// addition); this file is compiled without further contraction (CMakeLists.txt) so the order stays.
#include <bit>
#include <cmath>
#include <numbers>
#include <vector>

#include "mmx/error.hpp"
#include "mmx/torch_random.hpp"


namespace mmx {
namespace {

float f32(double d) { return static_cast<float>(d); }

// Natural log by the cephes single-precision method (mantissa in [√½, √2), degree-8 polynomial).
float cephes_logf(float x) {
  x = std::max(x, std::bit_cast<float>(0x00800000u));  // no denormals
  float e = static_cast<float>(static_cast<int32_t>(std::bit_cast<uint32_t>(x) >> 23) - 0x7f) + 1.0f;
  x = std::bit_cast<float>((std::bit_cast<uint32_t>(x) & ~0x7f800000u) | std::bit_cast<uint32_t>(0.5f));  // mantissa in [0.5, 1)
  const bool small = x < f32(0.707106781186547524);
  const float keep = small ? x : 0.0f;
  x = x - 1.0f;
  e = e - (small ? 1.0f : 0.0f);
  x = x + keep;
  const float z = x * x;
  static const float p[9] = {f32(7.0376836292E-2),  f32(-1.1514610310E-1), f32(1.1676998740E-1),
                             f32(-1.2420140846E-1), f32(1.4249322787E-1),  f32(-1.6668057665E-1),
                             f32(2.0000714765E-1),  f32(-2.4999993993E-1), f32(3.3333331174E-1)};
  float y = p[0];
  for (int i = 1; i < 9; ++i) y = std::fma(y, x, p[i]);
  y = y * x;
  y = std::fma(y, z, e * f32(-2.12194440e-4));
  y = std::fma(-z, 0.5f, y);
  return std::fma(e, f32(0.693359375), x + y);
}

// sin and cos by the cephes method: reduction by π/4 in three parts, two polynomials, octant signs.
void cephes_sincosf(float x, float* s, float* c) {
  uint32_t sign_sin = std::bit_cast<uint32_t>(x) & 0x80000000u;
  x = std::fabs(x);
  int32_t j = static_cast<int32_t>(x * f32(1.27323954473516));  // 4/π
  j = (j + 1) & ~1;
  const float y = static_cast<float>(j);
  sign_sin ^= static_cast<uint32_t>(j & 4) << 29;
  const bool sine_poly_for_sin = (j & 2) == 0;
  x = x + y * f32(-0.78515625);
  x = x + y * f32(-2.4187564849853515625e-4);
  x = std::fma(y, f32(-3.77489497744594108e-8), x);
  const uint32_t sign_cos = static_cast<uint32_t>(~(j - 2) & 4) << 29;
  const float z = x * x;
  float yc = std::fma(f32(2.443315711809948E-005), z, f32(-1.388731625493765E-003));
  yc = std::fma(yc, z, f32(4.166664568298827E-002));
  yc = yc * z;
  yc = std::fma(yc, z, -(z * 0.5f));
  yc = yc + 1.0f;
  float ys = std::fma(f32(-1.9515295891E-4), z, f32(8.3321608736E-3));
  ys = std::fma(ys, z, f32(-1.6666654611E-1));
  ys = ys * z;
  ys = std::fma(ys, x, x);
  *s = std::bit_cast<float>(std::bit_cast<uint32_t>(sine_poly_for_sin ? ys : yc) ^ sign_sin);
  *c = std::bit_cast<float>(std::bit_cast<uint32_t>(sine_poly_for_sin ? yc : ys) ^ sign_cos);
}

// Box–Muller on 16 uniforms: pairs (k, k + 8), u1 = 1 − first.
void normal_fill_16(float* d) {
  const float two_pi = static_cast<float>(2.0f * std::numbers::pi);
  for (int k = 0; k < 8; ++k) {
    const float radius = std::sqrt(-2.0f * cephes_logf(1.0f - d[k]));
    float s, c;
    cephes_sincosf(two_pi * d[k + 8], &s, &c);
    d[k] = radius * c;
    d[k + 8] = radius * s;
  }
}

}  // namespace

float TorchGenerator::uniform_float() { return static_cast<float>(engine_() & 0xFFFFFFu) * (1.0f / 16777216.0f); }

double TorchGenerator::uniform_double() {
  const uint64_t hi = engine_(), lo = engine_();
  return static_cast<double>(((hi << 32) | lo) & ((uint64_t(1) << 53) - 1)) * (1.0 / 9007199254740992.0);
}

Tensor TorchGenerator::randn(const Shape& shape) {
  for (int64_t d : shape)
    if (d < 0) fail("randn: negative size in ", shape_str(shape));
  Tensor t = Tensor::empty(shape);
  const int64_t n = t.numel();
  float* d = t.data<float>();
  if (n < 16) {  // normal_distribution<double>, one value at a time
    for (int64_t i = 0; i < n; ++i) {
      double v;
      if (next_normal_) {
        v = *next_normal_;
        next_normal_.reset();
      } else {
        const double u1 = uniform_double(), u2 = uniform_double();
        const double r = std::sqrt(-2.0 * std::log(1.0 - u2)), theta = 2.0 * std::numbers::pi * u1;
        next_normal_ = r * std::sin(theta);
        v = r * std::cos(theta);
      }
      d[i] = static_cast<float>(v);
    }
    return t;
  }
  for (int64_t i = 0; i < n; ++i) d[i] = uniform_float();
  for (int64_t i = 0; i + 16 <= n; i += 16) normal_fill_16(d + i);
  if (n % 16 != 0) {  // the last 16 values again, from fresh uniforms
    float* tail = d + n - 16;
    for (int i = 0; i < 16; ++i) tail[i] = uniform_float();
    normal_fill_16(tail);
  }
  return t;
}

}  // namespace mmx
