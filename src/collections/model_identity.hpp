// Which model made a catalogue's vectors (src/collections/model_identity.cpp): a name a later search can
// load it by, and a revision that changes when its weights do.
#pragma once
#include <string>

namespace mmx::collections {

struct ModelIdentity {
  std::string name;      // a Hub id as given, or a local folder's absolute path
  std::string revision;  // a Hub snapshot's commit, or "sha256:…" of config.json and the weights' headers
  std::string folder;    // where it is read from now
};
ModelIdentity identify_model(const std::string& model);

}  // namespace mmx::collections
