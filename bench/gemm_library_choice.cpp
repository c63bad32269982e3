// Which tuned GEMM library from Debian should back the CPU backend?
// Built three times (OpenBLAS, BLIS, oneDNN) from this one file; each binary times
// single-precision C = A·Bᵀ + C on the shapes of the lab's models and prints GFLOP/s.
// Run: bench/run_gemm_library_choice.sh  (results recorded in docs/gemm-library.md)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#if defined(MMX_CHOICE_OPENBLAS)
#include <cblas.h>
static const char* kLibrary = "openblas";
static void gemm(int m, int n, int k, const float* a, const float* b, float* c) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, a, k, b, k, 0.0f, c, n);
}
#elif defined(MMX_CHOICE_BLIS)
#include <blis.h>
static const char* kLibrary = "blis";
static void gemm(int m, int n, int k, const float* a, const float* b, float* c) {
  float one = 1.0f, zero = 0.0f;
  bli_sgemm(BLIS_NO_TRANSPOSE, BLIS_TRANSPOSE, m, n, k, &one, const_cast<float*>(a), k, 1,
            const_cast<float*>(b), k, 1, &zero, c, n, 1);
}
#elif defined(MMX_CHOICE_DNNL)
#include <dnnl.h>
static const char* kLibrary = "onednn";
static void gemm(int m, int n, int k, const float* a, const float* b, float* c) {
  dnnl_sgemm('N', 'T', m, n, k, 1.0f, a, k, b, k, 0.0f, c, n);
}
#endif

int main(int argc, char** argv) {
  const int runs = argc > 1 ? std::atoi(argv[1]) : 7;
  // M×N×K: bert-lab (8·7 tokens) qkv/ffn, bert 32×128 ffn, vit-base 4 images ffn, square.
  const int shapes[][3] = {{56, 768, 768},     {56, 3072, 768},    {4096, 768, 768},
                           {4096, 3072, 768},  {4096, 768, 3072},  {788, 3072, 768},
                           {1576, 768, 3072},  {2048, 2048, 2048}};
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  for (auto& s : shapes) {
    const int m = s[0], n = s[1], k = s[2];
    std::vector<float> a(size_t(m) * k), b(size_t(n) * k), c(size_t(m) * n);
    for (auto& x : a) x = dist(rng);
    for (auto& x : b) x = dist(rng);
    gemm(m, n, k, a.data(), b.data(), c.data());  // warm-up
    std::vector<double> ms;
    for (int r = 0; r < runs; ++r) {
      auto t0 = std::chrono::steady_clock::now();
      gemm(m, n, k, a.data(), b.data(), c.data());
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(ms.begin(), ms.end());
    const double med = ms[ms.size() / 2];
    std::printf("%-8s %5dx%5dx%5d  median %9.3f ms  min %9.3f ms  %7.1f GFLOP/s\n", kLibrary, m, n, k, med,
                ms[0], 2.0 * m * n * k / (med * 1e6));
  }
}
