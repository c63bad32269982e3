// exp, log and expm1 of a float32 value as torch's CPU kernels compute them (torch_math.cpp): torch 1.13
// evaluates these unary ops — on a 0-d tensor as on a long one — with SLEEF's 1.0-ulp vector functions
// wherever its AVX2 kernels run (an x86-64 CPU with AVX2 and FMA), and with the C library's elsewhere.
// The C library's results differ in the last bit for about one value in ten (measured on 6 000 values:
// exp 561, expm1 586, log 32), which a multistep sampler carries into every later step.
#pragma once

namespace mmx {

float torch_exp(float x);
float torch_log(float x);
float torch_expm1(float x);

}  // namespace mmx
