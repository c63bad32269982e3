// The embedding space a model defines (src/models/embedding_space.cpp): how its token or patch states
// become one embedding per input (the pooling) and how two embeddings are compared (the score). Both are
// facts of the model, which the registry records for each architecture.
#pragma once
#include <string>

namespace mmx {

enum class Pooling {
  Cls,        // last_hidden_state[:, 0]
  Pooler,     // pooler_output (dense + tanh on [CLS])
  Mean,       // masked mean over all real tokens
  MeanNoCls,  // masked mean over real tokens except [CLS]: what the lab means
  Lab,        // the lab verbatim: sum(h[:, 1:], 1) / (mask.sum(1) − 1), padding rows included in the sum
  Projection, // CLIP: get_text_features / get_image_features (pooled output through the projection)
  Pooled,     // CLIP: the pooled output before the projection
  // sentence-transformers' Pooling modes (models/Pooling.py), over the tokens the mask keeps:
  Max,           // the largest value of each dimension (masked positions count as -1e9)
  MeanSqrtLen,   // the sum divided by the square root of the token count
  WeightedMean,  // the mean weighted by position 1, 2, …, L (SGPT)
  LastToken,     // the last real token's state
  Modules,       // a sentence-transformers folder's own modules: its Pooling, then Dense and Normalize
};
// "cls", "pooler", "mean", "mean-no-cls", "lab", "projection", "pooled", "max", "mean-sqrt-len",
// "weightedmean", "lasttoken", "modules"; anything else is a usage error.
Pooling pooling_from_name(const std::string& name);
const char* pooling_name(Pooling pooling);

enum class Score {
  Dot,         // rows · colsᵀ (the lab)
  Cosine,      // normalised rows · normalised colsᵀ
  ClipLogits,  // cosine × exp(logit_scale): CLIP's logits_per_text when rows are texts
};
Score score_from_name(const std::string& name);  // "dot", "cosine", "clip-logits"
const char* score_name(Score score);

}  // namespace mmx
