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
  if (name == "max") return Pooling::Max;
  if (name == "mean-sqrt-len") return Pooling::MeanSqrtLen;
  if (name == "weightedmean") return Pooling::WeightedMean;
  if (name == "lasttoken") return Pooling::LastToken;
  if (name == "modules") return Pooling::Modules;
  usage_error("unknown pooling '", name,
              "' (choose cls, pooler, mean, mean-no-cls, lab, max, mean-sqrt-len, weightedmean or lasttoken; "
              "projection or pooled for CLIP; modules for a sentence-transformers folder)");
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
    case Pooling::Max: return "max";
    case Pooling::MeanSqrtLen: return "mean-sqrt-len";
    case Pooling::WeightedMean: return "weightedmean";
    case Pooling::LastToken: return "lasttoken";
    case Pooling::Modules: return "modules";
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
