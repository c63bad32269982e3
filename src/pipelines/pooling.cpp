#include "pipelines/pooling.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "mmx/error.hpp"

namespace mmx::detail {

Tensor pool(Pooling pooling, const Tensor& hidden, const Tensor& mask) {
  const int64_t batch = hidden.dim(0), seq = hidden.dim(1), d = hidden.dim(2);
  switch (pooling) {
    case Pooling::Cls: case Pooling::Mean: case Pooling::MeanNoCls: case Pooling::Lab: case Pooling::Max:
    case Pooling::MeanSqrtLen: case Pooling::WeightedMean: case Pooling::LastToken: break;
    default: fail("pooling ", pooling_name(pooling), " does not pool token states");
  }
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
    if (pooling == Pooling::Max) {  // sentence-transformers sets masked positions to -1e9, then takes the max
      std::fill(ob, ob + d, -std::numeric_limits<float>::infinity());
      for (int64_t t = 0; t < seq; ++t)
        for (int64_t i = 0; i < d; ++i) ob[i] = std::max(ob[i], mb[t] ? hb[t * d + i] : -1e9f);
      continue;
    }
    if (pooling == Pooling::LastToken) {  // the last kept position; none kept: zeros (the state times a mask of 0)
      int64_t last = -1;
      for (int64_t t = 0; t < seq; ++t)
        if (mb[t]) last = t;
      if (last < 0) std::fill(ob, ob + d, 0.f);
      else std::memcpy(ob, hb + last * d, sizeof(float) * d);
      continue;
    }
    std::fill(sum.begin(), sum.end(), 0.0);
    double weight_sum = 0;
    const int64_t first = pooling == Pooling::MeanNoCls || pooling == Pooling::Lab ? 1 : 0;
    for (int64_t t = first; t < seq; ++t) {
      // The lab's formula sums every position after [CLS], padding included; the masked means do not.
      if (pooling != Pooling::Lab && mb[t] == 0) continue;
      const double w = pooling == Pooling::WeightedMean ? double(t + 1) : 1.0;
      weight_sum += pooling == Pooling::Lab ? 0 : w;
      for (int64_t i = 0; i < d; ++i) sum[i] += w * hb[t * d + i];
    }
    double divisor;
    if (pooling == Pooling::Lab) {
      int64_t count = 0;
      for (int64_t t = 0; t < seq; ++t) count += mb[t];
      divisor = double(count - 1);
    } else {
      // sentence-transformers clamps the count at 1e-9: a row with no kept token pools to zeros.
      divisor = std::max(weight_sum, 1e-9);
      if (pooling == Pooling::MeanSqrtLen) divisor = std::sqrt(divisor);
    }
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
