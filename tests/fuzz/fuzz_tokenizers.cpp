// libFuzzer: arbitrary bytes as text through the WordPiece and CLIP BPE tokenizers and two tokenizer.json
// files (a Unigram with SentencePiece's char map, a byte-level BPE): invalid UTF-8 must be an
// mmx::Error; valid text must tokenise. MMX_FUZZ_DATA names tests/data.
#include <cstdlib>
#include <memory>
#include <string>

#include "mmx/tokenizer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string root = std::getenv("MMX_FUZZ_DATA") ? std::getenv("MMX_FUZZ_DATA") : "tests/data";
  static const auto bert = mmx::Tokenizer::load(root + "/tokenizers/bert-base-uncased");
  static const auto clip = mmx::Tokenizer::load(root + "/tokenizers/clip");
  static const auto unigram = mmx::Tokenizer::load(root + "/tokenizers/unigram-xlmr");
  static const auto byte_level = mmx::Tokenizer::load(root + "/tokenizers/bpe-roberta");
  const std::string text(reinterpret_cast<const char*>(data), size);
  for (const auto* t : {bert.get(), clip.get(), unigram.get(), byte_level.get()}) {
    try {
      t->encode_batch({text}, mmx::Padding::MaxLength, 77);
    } catch (const mmx::Error&) {
    }
  }
  return 0;
}
