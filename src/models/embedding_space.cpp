#include "mmx/embedding_space.hpp"

#include "mmx/error.hpp"

namespace mmx {

Pooling pooling_from_name(const std::string& name) {
  if (name == "cls") return Pooling::Cls;
  if (name == "pooler") return Pooling::Pooler;
  if (name == "mean") return Pooling::Mean;
  if (name == "mean-no-cls") return Pooling::MeanNoCls;
  if (name == "lab") return Pooling::Lab;
  if (name == "projection") return Pooling::Projection;
  if (name == "pooled") return Pooling::Pooled;
  usage_error("unknown pooling '", name, "' (choose cls, pooler, mean, mean-no-cls or lab; projection or pooled for CLIP)");
}

const char* pooling_name(Pooling p) {
  switch (p) {
    case Pooling::Projection: return "projection";
    case Pooling::Pooled: return "pooled";
    case Pooling::Cls: return "cls";
    case Pooling::Pooler: return "pooler";
    case Pooling::Mean: return "mean";
    case Pooling::MeanNoCls: return "mean-no-cls";
    case Pooling::Lab: return "lab";
  }
  return "?";
}

Score score_from_name(const std::string& name) {
  if (name == "dot") return Score::Dot;
  if (name == "cosine") return Score::Cosine;
  if (name == "clip-logits") return Score::ClipLogits;
  usage_error("unknown score '", name, "' (choose dot, cosine or clip-logits)");
}

const char* score_name(Score s) {
  switch (s) {
    case Score::Dot: return "dot";
    case Score::Cosine: return "cosine";
    case Score::ClipLogits: return "clip-logits";
  }
  return "?";
}

}  // namespace mmx
