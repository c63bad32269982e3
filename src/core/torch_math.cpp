// SLEEF (Debian's libsleef, the library torch links) in its scalar FMA build gives the values of the
// AVX2/AVX-512 functions torch calls, bit for bit (checked on 4·10⁶ values each); it runs only where the
// CPU has FMA, which is also where torch takes its vectorized path.
#include "core/torch_math.hpp"

#include <cmath>

// sleef.h declares its FMA builds only to code compiled with FMA (FP_FAST_FMA); this file is not, and
// calls them only after checking the CPU.
extern "C" {
float Sleef_expf1_u10purecfma(float);
float Sleef_logf1_u10purecfma(float);
float Sleef_expm1f1_u10purecfma(float);
}

namespace mmx {
namespace {

bool torch_uses_sleef() {
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return yes;
}

}  // namespace

float torch_exp(float x) { return torch_uses_sleef() ? Sleef_expf1_u10purecfma(x) : std::exp(x); }
float torch_log(float x) { return torch_uses_sleef() ? Sleef_logf1_u10purecfma(x) : std::log(x); }
float torch_expm1(float x) { return torch_uses_sleef() ? Sleef_expm1f1_u10purecfma(x) : std::expm1(x); }

}  // namespace mmx
