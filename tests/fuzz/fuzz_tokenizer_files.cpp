// libFuzzer: arbitrary bytes as the files of a tokenizer folder must load or raise mmx::Error, and a
// loaded tokenizer must encode a fixed text. The input is split at each "\n@@\n" into the folder's files:
// the first byte picks WordPiece (vocab.txt, tokenizer_config.json, special_tokens_map.json), CLIP's
// BPE (vocab.json, merges.txt, tokenizer_config.json), a BERT folder's tokenizer.json (the general reader,
// text/tokenizer_json.cpp, with BertTokenizerFast's options), or any tokenizer.json through that reader.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "mmx/tokenizer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static const std::string folder = "/tmp/mmx-fuzz-tokenizer-" + std::to_string(getpid());
  std::filesystem::remove_all(folder);
  std::filesystem::create_directories(folder);
  const int mode = data[0] % 4;
  const bool bpe = mode == 1;
  const std::vector<std::string> names =
      bpe ? std::vector<std::string>{"vocab.json", "merges.txt", "tokenizer_config.json"}
      : mode >= 2 ? std::vector<std::string>{"tokenizer.json", "tokenizer_config.json"}
                  : std::vector<std::string>{"vocab.txt", "tokenizer_config.json", "special_tokens_map.json"};
  const std::string bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  size_t begin = 0;
  for (size_t k = 0; k < names.size() && begin <= bytes.size(); ++k) {
    const size_t end = k + 1 < names.size() ? std::min(bytes.find("\n@@\n", begin), bytes.size()) : bytes.size();
    if (std::FILE* f = std::fopen((folder + "/" + names[k]).c_str(), "wb")) {
      std::fwrite(bytes.data() + begin, 1, end - begin, f);
      std::fclose(f);
    }
    begin = end + 4;
  }
  try {
    const auto kind = bpe ? mmx::TokenizerKind::ClipBpe : mode == 3 ? mmx::TokenizerKind::TokenizerJson : mmx::TokenizerKind::WordPiece;
    const auto tokenizer = mmx::Tokenizer::load(folder, kind);
    tokenizer->encode_batch({"A photo of a cat, naïve café 東京 ﬁ!", "x"}, mmx::Padding::MaxLength, 16);
  } catch (const mmx::Error&) {
  }
  return 0;
}
