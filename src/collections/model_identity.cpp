#include "collections/model_identity.hpp"

#include "collections/catalogue.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <regex>
#include <vector>

#include "mmx/error.hpp"
#include "mmx/files.hpp"
#include "mmx/model.hpp"

namespace mmx::collections {

ModelIdentity identify_model(const std::string& model) {
  namespace fs = std::filesystem;
  ModelIdentity id;
  std::error_code ec;
  id.folder = inspect_model(model).path;
  id.name = fs::is_directory(model, ec) ? fs::weakly_canonical(model, ec).string() : model;
  static const std::regex kSnapshot(".*/snapshots/([0-9a-f]{40})/?$");
  std::smatch m;
  if (std::regex_match(id.folder, m, kSnapshot)) {
    id.revision = m[1].str();
    return id;
  }
  // A local folder: config.json and, of every weight file, its name, size and first MiB (the safetensors
  // header with every tensor's shape and offset, and the first weights).
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
  const std::string config = read_file(join_path(id.folder, "config.json"));
  EVP_DigestUpdate(ctx.get(), config.data(), config.size());
  std::vector<fs::path> weights;
  for (const auto& entry : fs::directory_iterator(id.folder, ec)) {
    const std::string ext = entry.path().extension().string();
    if (ext == ".safetensors" || ext == ".bin") weights.push_back(entry.path());
  }
  std::sort(weights.begin(), weights.end());
  for (const auto& w : weights) {
    const std::string name = w.filename().string() + "\n" + std::to_string(fs::file_size(w, ec)) + "\n";
    EVP_DigestUpdate(ctx.get(), name.data(), name.size());
    std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(w.c_str(), "rb"), std::fclose);
    if (!f) continue;
    std::string head(1 << 20, '\0');
    head.resize(std::fread(head.data(), 1, head.size(), f.get()));
    EVP_DigestUpdate(ctx.get(), head.data(), head.size());
  }
  unsigned char digest[32];
  unsigned int length = 0;
  EVP_DigestFinal_ex(ctx.get(), digest, &length);
  id.revision = "sha256:" + hex(std::string(reinterpret_cast<const char*>(digest), 8));
  return id;
}

}  // namespace mmx::collections
