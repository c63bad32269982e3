// mmx tokenize: the ids a model sees, as JSON, exactly as transformers' tokenizer(texts) gives them.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "mmx/model.hpp"

namespace mmx::cli {

const Command kTokenizeCommand{
    "tokenize",
    "mmx tokenize --model MODEL (--text T)... [--texts-file FILE] [--padding longest|max_length|none] [--max-length N]",
    "Print the token ids, masks (and BERT's token_type_ids) and tokens as JSON, one list per text.",
    {
        {"model", "MODEL", "a model folder, a folder holding only tokenizer files, or a Hub id"},
        text_option("text", "T", "a text to tokenize", true),
        {"texts-file", "FILE", "UTF-8 file, one text per line (empty lines skipped)"},
        texts_limit_option(),
        {"padding", "MODE", "longest (default, as padding=True) | max_length | none", false, {"longest", "max_length", "none"}},
        {"max-length", "N", "truncate to N tokens; with --padding max_length, pad to N"},
    },
    R"(`tokens` are the vocabulary entries of input_ids (special and padding tokens included), so the
two lists line up. Without --max-length nothing is truncated, as tokenizer(text) does.

example:
  mmx tokenize --model tests/data/models/bert-tiny --text "Cats don't usually" --text "like water"
)",
};

int run_tokenize(const Args& args) {
  const auto model = args.get("model");
  if (!model) usage_error("--model MODEL is required");
  Padding padding = Padding::Longest;
  if (auto p = args.get("padding")) {
    if (*p == "longest") padding = Padding::Longest;
    else if (*p == "max_length") padding = Padding::MaxLength;
    else if (*p == "none") padding = Padding::None;
    else usage_error("--padding must be longest, max_length or none, got '", *p, "'");
  }
  const auto max_length = args.get_int("max-length", 1);
  const std::vector<std::string> texts = collect_texts(args);
  const auto tokenizer = load_tokenizer(*model);  // tokenizer_config.json's class, else config.json's architecture
  if (padding == Padding::MaxLength && !max_length && tokenizer->model_max_length() > (int64_t(1) << 20))
    usage_error("--padding max_length needs --max-length: this tokenizer sets no model_max_length");
  const BatchEncoding batch = tokenizer->encode_batch(texts, padding, max_length);
  nlohmann::ordered_json out;  // the tokenizer's model_input_names, in its order, then the tokens
  const std::vector<std::string> names = tokenizer->model_input_names();
  for (const auto& name : names) out[name] = nlohmann::json::array();
  out["tokens"] = nlohmann::json::array();
  for (const auto& row : batch.rows) {
    for (const auto& name : names)
      out[name].push_back(name == "input_ids" ? row.input_ids : name == "attention_mask" ? row.attention_mask : row.token_type_ids);
    nlohmann::ordered_json tokens = nlohmann::ordered_json::array();
    for (int64_t id : row.input_ids) tokens.push_back(tokenizer->id_to_token(id));
    out["tokens"].push_back(std::move(tokens));
  }
  std::puts(out.dump(-1, ' ', false, nlohmann::json::error_handler_t::strict).c_str());
  return 0;
}

}  // namespace mmx::cli
