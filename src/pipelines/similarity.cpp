#include "mmx/similarity.hpp"

#include <cmath>

#include "backend/ops.hpp"

namespace mmx {

SoftmaxDim softmax_dim_from_name(const std::string& name) {
  if (name == "dim0" || name == "0") return SoftmaxDim::Dim0;
  if (name == "dim1" || name == "1") return SoftmaxDim::Dim1;
  if (name == "none") return SoftmaxDim::None;
  usage_error("unknown softmax '", name, "' (choose dim0, dim1 or none)");
}

const char* softmax_dim_name(SoftmaxDim d) {
  switch (d) {
    case SoftmaxDim::None: return "none";
    case SoftmaxDim::Dim0: return "dim0";
    case SoftmaxDim::Dim1: return "dim1";
  }
  return "?";
}

namespace {
Tensor normalized_rows(const Tensor& x) {  // x / ||x||, as CLIPModel.forward normalises its embeddings
  Tensor y = x.clone();
  const int64_t n = y.dim(0), d = y.dim(1);
  float* p = y.data<float>();
  for (int64_t r = 0; r < n; ++r) {
    double sq = 0;
    for (int64_t i = 0; i < d; ++i) sq += double(p[r * d + i]) * p[r * d + i];
    const float norm = static_cast<float>(std::sqrt(sq));
    for (int64_t i = 0; i < d; ++i) p[r * d + i] /= norm;
  }
  return y;
}
}  // namespace

Tensor similarity_matrix(const Tensor& rows, const Tensor& cols, Score score, std::optional<float> logit_scale) {
  if (rows.ndim() != 2 || cols.ndim() != 2 || rows.dtype() != DType::F32 || cols.dtype() != DType::F32)
    fail("similarity: embeddings must be F32 matrices, got ", shape_str(rows.shape()), " and ", shape_str(cols.shape()));
  if (rows.dim(1) != cols.dim(1))
    throw Error(ErrorKind::Usage,
                str("similarity: row embeddings have ", rows.dim(1), " dimensions, column embeddings ", cols.dim(1)),
                "the two encoders must embed into spaces of one size (BERT-base and ViT-base are both 768)");
  if (rows.dim(0) == 0 || cols.dim(0) == 0) usage_error("similarity: an empty set of rows or columns");
  if (score == Score::ClipLogits && !logit_scale)
    usage_error("--score clip-logits needs a CLIP model (its logit_scale)");
  const Tensor a = score == Score::Dot ? rows : normalized_rows(rows);
  const Tensor b = score == Score::Dot ? cols : normalized_rows(cols);
  const float alpha = score == Score::ClipLogits ? std::exp(*logit_scale) : 1.f;
  Tensor out = Tensor::empty({rows.dim(0), cols.dim(0)});
  ops::gemm(false, true, rows.dim(0), cols.dim(0), rows.dim(1), alpha, a.data<float>(), rows.dim(1), b.data<float>(),
            cols.dim(1), 0.f, out.data<float>(), cols.dim(0));
  return out;
}

void softmax_(Tensor& m, SoftmaxDim dim) {
  if (dim == SoftmaxDim::None) return;
  if (dim == SoftmaxDim::Dim1) return ops::softmax_(m);
  // dim0: transpose, softmax along rows, transpose back.
  const int64_t r = m.dim(0), c = m.dim(1);
  Tensor t = Tensor::empty({c, r});
  for (int64_t i = 0; i < r; ++i)
    for (int64_t j = 0; j < c; ++j) t.data<float>()[j * r + i] = m.data<float>()[i * c + j];
  ops::softmax_(t);
  for (int64_t i = 0; i < r; ++i)
    for (int64_t j = 0; j < c; ++j) m.data<float>()[i * c + j] = t.data<float>()[j * r + i];
}

}  // namespace mmx
