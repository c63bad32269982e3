#include "pipelines/pooling.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "mmx/error.hpp"

namespace mmx::detail {

Tensor pool(Pooling pooling, const Tensor& hidden, const Tensor& mask) {
  const int64_t batch = hidden.dim(0), seq = hidden.dim(1), d = hidden.dim(2);
  if (pooling != Pooling::Cls && pooling != Pooling::Mean && pooling != Pooling::MeanNoCls && pooling != Pooling::Lab)
    fail("pooling ", pooling_name(pooling), " does not pool token states");
  Tensor out = Tensor::empty({batch, d});
  const float* h = hidden.data<float>();
  const int64_t* m = mask.data<int64_t>();
  float* o = out.data<float>();
  std::vector<double> sum(static_cast<size_t>(d));
  for (int64_t b = 0; b < batch; ++b) {
    const float* hb = h + b * seq * d;
    const int64_t* mb = m + b * seq;
    float* ob = o + b * d;
    if (pooling == Pooling::Cls) {
      std::memcpy(ob, hb, sizeof(float) * d);
      continue;
    }
    std::fill(sum.begin(), sum.end(), 0.0);
    int64_t count = 0;
    for (int64_t t = 0; t < seq; ++t) count += mb[t];
    const int64_t first = pooling == Pooling::Mean ? 0 : 1;
    for (int64_t t = first; t < seq; ++t) {
      // The lab's formula sums every position after [CLS], padding included; the masked means do not.
      if (pooling != Pooling::Lab && mb[t] == 0) continue;
      for (int64_t i = 0; i < d; ++i) sum[i] += hb[t * d + i];
    }
    const double divisor = static_cast<double>(pooling == Pooling::Mean ? count : count - 1);
    for (int64_t i = 0; i < d; ++i) ob[i] = static_cast<float>(sum[i] / divisor);
  }
  return out;
}

void l2_normalize(float* row, int64_t d) {
  double sq = 0;
  for (int64_t i = 0; i < d; ++i) sq += double(row[i]) * row[i];
  const double norm = std::max(std::sqrt(sq), 1e-12);  // torch.nn.functional.normalize's eps
  for (int64_t i = 0; i < d; ++i) row[i] = static_cast<float>(row[i] / norm);
}

void l2_normalize(Tensor& x) {
  const int64_t n = x.dim(0), d = x.dim(1);
  float* p = x.data<float>();
  for (int64_t r = 0; r < n; ++r) l2_normalize(p + r * d, d);
}
}  // namespace mmx::detail
