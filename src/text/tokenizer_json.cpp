#include "text/tokenizer_json.hpp"

#include <algorithm>
#include <limits>
#include <optional>

#include "io/json_config.hpp"
#include "mmx/files.hpp"
#include "text/tokenizer_json_components.hpp"

namespace mmx::text {
namespace {

using namespace tokenizer_json;

// ---- post-processors: where the special tokens go ----

struct TemplatePart {
  bool is_sequence;  // $A / $B, else special tokens
  int which = 0;     // 0 = A, 1 = B
  std::vector<int64_t> ids;
  int64_t type_id = 0;
};
struct Template {
  std::vector<TemplatePart> single, pair;
};

Template make_template(const Json& j, const Where& w) {
  Template t;
  if (j.is_null()) {  // no post-processor: the sequences as they are
    t.single = {{true, 0, {}, 0}};
    t.pair = {{true, 0, {}, 0}, {true, 1, {}, 1}};
    return t;
  }
  const std::string type = type_of(j, w);
  auto token_pair = [&](const char* key) {
    const Json& p = member(j, w, key);
    if (!p.is_array() || p.size() != 2 || !p[0].is_string() || !p[1].is_number_integer())
      w.at(key).fail("is not [token, id]");
    return p[1].get<int64_t>();
  };
  if (type == "BertProcessing") {
    const int64_t cls = token_pair("cls"), sep = token_pair("sep");
    t.single = {{false, 0, {cls}, 0}, {true, 0, {}, 0}, {false, 0, {sep}, 0}};
    t.pair = {{false, 0, {cls}, 0}, {true, 0, {}, 0}, {false, 0, {sep}, 0}, {true, 1, {}, 1}, {false, 0, {sep}, 1}};
  } else if (type == "RobertaProcessing") {
    const int64_t cls = token_pair("cls"), sep = token_pair("sep");
    t.single = {{false, 0, {cls}, 0}, {true, 0, {}, 0}, {false, 0, {sep}, 0}};
    t.pair = {
        {false, 0, {cls}, 0}, {true, 0, {}, 0}, {false, 0, {sep, sep}, 0}, {true, 1, {}, 0}, {false, 0, {sep}, 0}};
  } else if (type == "TemplateProcessing") {
    const Json& specials = member(j, w, "special_tokens");
    auto parts = [&](const char* key) {
      std::vector<TemplatePart> out;
      const Json& list = member(j, w, key);
      if (!list.is_array()) w.at(key).fail("is not a list");
      for (size_t i = 0; i < list.size(); ++i) {
        const Where at = w.at(key).at(i);
        const Json& e = list[i];
        if (e.is_object() && e.contains("Sequence")) {
          const std::string id = string_member(e["Sequence"], at, "id");
          if (id != "A" && id != "B") at.fail("names sequence '", id, "' (A or B)");
          out.push_back({true, id == "B", {}, e["Sequence"].value("type_id", int64_t(0))});
        } else if (e.is_object() && e.contains("SpecialToken")) {
          const std::string id = string_member(e["SpecialToken"], at, "id");
          if (!specials.contains(id)) at.fail("names special token '", id, "', which special_tokens does not define");
          const Json& ids = member(specials[id], w.at("special_tokens").at(id), "ids");
          TemplatePart part{false, 0, {}, e["SpecialToken"].value("type_id", int64_t(0))};
          for (const Json& v : ids) {
            if (!v.is_number_integer()) w.at("special_tokens").at(id).fail("has a non-integer id");
            part.ids.push_back(v.get<int64_t>());
          }
          out.push_back(std::move(part));
        } else {
          at.fail("is neither a Sequence nor a SpecialToken");
        }
      }
      return out;
    };
    t.single = parts("single");
    t.pair = parts("pair");
  } else if (type == "ByteLevel") {
    return make_template(Json(), w);  // offsets only
  } else if (type == "Sequence") {
    Template result = make_template(Json(), w);
    const Json& list = member(j, w, "processors");
    for (size_t i = 0; i < list.size(); ++i) {
      const Where at = w.at("processors").at(i);
      if (type_of(list[i], at) == "ByteLevel") continue;
      result = make_template(list[i], at);  // the one that places special tokens
    }
    return result;
  } else {
    unsupported(w, type, "TemplateProcessing, BertProcessing, RobertaProcessing, ByteLevel, Sequence");
  }
  return t;
}

size_t special_count(const std::vector<TemplatePart>& parts) {
  size_t n = 0;
  for (const auto& p : parts) n += p.ids.size();
  return n;
}

struct AddedToken {
  U32 content;
  int64_t id;
  bool single_word, lstrip, rstrip, normalized, special;
};

}  // namespace

struct JsonTokenizer::Impl {
  std::string path;
  NormalizerPtr normalizer;
  PreTokenizerPtr pre_tokenizer;
  std::unique_ptr<Model> model;
  Template post;
  std::vector<AddedToken> added;               // longest first, so the first match at a position is the longest
  std::vector<std::string> extra_id_to_token;  // added tokens beyond the model's vocabulary
  int64_t pad_id = 0;
  int64_t model_max_length = std::numeric_limits<int64_t>::max();
  bool token_types = false;

  struct Segment {
    U32 text;
    const AddedToken* token;  // an added token, else text to tokenize
    bool text_start;
  };
  // Splits `text` on the added tokens whose `normalized` flag is `normalized`.
  std::vector<Segment> split_added(const U32& text, bool normalized, bool text_start) const {
    std::vector<Segment> out;
    size_t plain_start = 0, i = 0;
    auto emit_plain = [&](size_t end) {
      if (end > plain_start)
        out.push_back({text.substr(plain_start, end - plain_start), nullptr, text_start && plain_start == 0});
    };
    while (i < text.size()) {
      const AddedToken* hit = nullptr;
      for (const auto& t : added) {
        if (t.normalized != normalized || t.content.empty() || text.compare(i, t.content.size(), t.content) != 0)
          continue;
        if (t.single_word && ((i > 0 && is_word_char(text[i - 1])) ||
                              (i + t.content.size() < text.size() && is_word_char(text[i + t.content.size()]))))
          continue;
        hit = &t;
        break;
      }
      if (!hit) {
        ++i;
        continue;
      }
      size_t begin = i, end = i + hit->content.size();
      if (hit->lstrip)
        while (begin > plain_start && is_whitespace(text[begin - 1])) --begin;
      if (hit->rstrip)
        while (end < text.size() && is_whitespace(text[end])) ++end;
      emit_plain(begin);
      out.push_back({hit->content, hit, false});
      plain_start = i = end;
    }
    emit_plain(text.size());
    return out;
  }

  std::vector<Token> encode_one(const std::string& text, const std::string& what) const {
    const U32 raw = utf8_to_u32(text, what);
    std::vector<Token> tokens;
    for (const Segment& seg : split_added(raw, false, true)) {
      if (seg.token) {
        tokens.push_back({seg.token->id, u32_to_utf8(seg.token->content)});
        continue;
      }
      U32 normalized = seg.text;
      if (normalizer) normalizer->apply(normalized);
      for (const Segment& sub : split_added(normalized, true, seg.text_start)) {
        if (sub.token) {
          tokens.push_back({sub.token->id, u32_to_utf8(sub.token->content)});
          continue;
        }
        std::vector<U32> pieces{sub.text};
        if (pre_tokenizer) pre_tokenizer->apply(pieces, sub.text_start);
        for (const U32& p : pieces)
          if (!p.empty()) model->tokenize(p, tokens);
      }
    }
    return tokens;
  }
};

JsonTokenizer::JsonTokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
JsonTokenizer::~JsonTokenizer() = default;

std::unique_ptr<JsonTokenizer> JsonTokenizer::load(const std::string& folder, bool bert_options) {
  const std::string json = join_path(folder, "tokenizer.json"), config = join_path(folder, "tokenizer_config.json");
  if (!file_exists(json)) fail(folder, ": no tokenizer.json (this model's tokenizer is read from that file)");
  return load_files(json, file_exists(config) ? config : "", bert_options);
}

std::unique_ptr<JsonTokenizer> JsonTokenizer::load_files(const std::string& path, const std::string& config_path,
                                                         bool bert_options) {
  const JsonObject file = JsonObject::load(path);
  const Json& j = file.json();
  const Where root{path, ""};
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->model = make_model(member(j, root, "model"), root.at("model"));
  impl->normalizer = make_normalizer(j.value("normalizer", Json()), root.at("normalizer"));
  impl->pre_tokenizer = make_pre_tokenizer(j.value("pre_tokenizer", Json()), root.at("pre_tokenizer"));
  const Json post = j.value("post_processor", Json());
  impl->post = make_template(post, root.at("post_processor"));
  // Token types are a model input where the template gives the second sequence its own type (BERT).
  for (const auto& p : impl->post.pair)
    if (p.type_id != 0) impl->token_types = true;
  if (j.contains("added_tokens") && j["added_tokens"].is_array()) {
    const Json& list = j["added_tokens"];
    for (size_t i = 0; i < list.size(); ++i) {
      const Where w = root.at("added_tokens").at(i);
      const Json& t = list[i];
      AddedToken a{u32_member(t, w, "content"),
                   0,
                   bool_member(t, w, "single_word", false),
                   bool_member(t, w, "lstrip", false),
                   bool_member(t, w, "rstrip", false),
                   bool_member(t, w, "normalized", false),
                   bool_member(t, w, "special", false)};
      if (!t.contains("id") || !t["id"].is_number_integer() || t["id"].get<int64_t>() < 0)
        w.fail("has no valid \"id\"");
      a.id = t["id"].get<int64_t>();
      const size_t vocab = impl->model->id_to_token.size();
      if (size_t(a.id) >= vocab) {
        if (impl->extra_id_to_token.size() < size_t(a.id) - vocab + 1)
          impl->extra_id_to_token.resize(size_t(a.id) - vocab + 1);
        impl->extra_id_to_token[size_t(a.id) - vocab] = u32_to_utf8(a.content);
      }
      impl->added.push_back(std::move(a));
    }
    std::stable_sort(impl->added.begin(), impl->added.end(),
                     [](const AddedToken& a, const AddedToken& b) { return a.content.size() > b.content.size(); });
  }
  // The pad token: the file's padding block, else tokenizer_config.json's pad_token, else a usual name.
  std::optional<std::string> pad_name;
  std::optional<JsonObject> config;
  if (!config_path.empty()) config.emplace(JsonObject::load(config_path));
  if (config) {
    impl->model_max_length = config->get_count("model_max_length", impl->model_max_length,
                                               {1, std::numeric_limits<int64_t>::max(), "a token count"});
    const Json& c = config->json();
    if (c.contains("pad_token")) {
      if (c["pad_token"].is_string())
        pad_name = c["pad_token"].get<std::string>();
      else if (c["pad_token"].is_object() && c["pad_token"].contains("content"))
        pad_name = c["pad_token"]["content"].get<std::string>();
    }
  }
  // BertTokenizerFast.__init__ (and MPNet's, Electra's): the config's options replace a BertNormalizer's.
  const std::string cls = config ? config->get_optional_string("tokenizer_class").value_or("") : "";
  for (const char* name : {"MPNetTokenizer", "MPNetTokenizerFast", "ElectraTokenizer", "ElectraTokenizerFast"})
    if (cls == name) bert_options = true;
  if (impl->normalizer && bert_options)
    set_bert_options(*impl->normalizer, config ? config->get_bool("do_lower_case", true) : true,
                     config ? config->get_optional_bool("strip_accents") : std::nullopt,
                     config ? config->get_bool("tokenize_chinese_chars", true) : true);
  auto id_of = [&](const std::string& name) -> std::optional<int64_t> {
    for (const auto& a : impl->added)
      if (u32_to_utf8(a.content) == name) return a.id;
    return impl->model->lookup(name);
  };
  std::optional<int64_t> pad;
  if (j.contains("padding") && j["padding"].is_object() && j["padding"].contains("pad_id") &&
      j["padding"]["pad_id"].is_number_integer())
    pad = j["padding"]["pad_id"].get<int64_t>();
  if (!pad && pad_name) pad = id_of(*pad_name);
  for (const char* name : {"<pad>", "[PAD]"})
    if (!pad) pad = id_of(name);
  impl->pad_id = pad.value_or(0);
  return std::unique_ptr<JsonTokenizer>(new JsonTokenizer(std::move(impl)));
}

std::vector<std::string> JsonTokenizer::tokenize(const std::string& text) const {
  std::vector<std::string> out;
  for (auto& t : impl_->encode_one(text, "text")) out.push_back(std::move(t.text));
  return out;
}

Encoding JsonTokenizer::encode(const std::string& text, const std::string* text_pair,
                               std::optional<int64_t> max_length) const {
  std::vector<Token> a = impl_->encode_one(text, "text"), b;
  if (text_pair) b = impl_->encode_one(*text_pair, "text pair");
  const auto& parts = text_pair ? impl_->post.pair : impl_->post.single;
  if (max_length) {  // truncation=True: the longest sequence loses tokens first, the specials stay
    const int64_t budget = std::max<int64_t>(0, *max_length - int64_t(special_count(parts)));
    while (int64_t(a.size() + b.size()) > budget) {
      if (b.size() > a.size())
        b.pop_back();
      else
        a.pop_back();
    }
  }
  Encoding e;
  for (const auto& p : parts) {
    if (p.is_sequence) {
      for (const auto& t : p.which ? b : a) {
        e.input_ids.push_back(t.id);
        e.token_type_ids.push_back(p.type_id);
        e.special_tokens_mask.push_back(0);
      }
    } else {
      for (int64_t id : p.ids) {
        e.input_ids.push_back(id);
        e.token_type_ids.push_back(p.type_id);
        e.special_tokens_mask.push_back(1);
      }
    }
  }
  e.attention_mask.assign(e.input_ids.size(), 1);
  return e;
}

std::string JsonTokenizer::id_to_token(int64_t id) const {
  const auto& v = impl_->model->id_to_token;
  if (id >= 0 && size_t(id) < v.size()) return v[size_t(id)];
  const size_t extra = size_t(id) - v.size();
  if (id >= 0 && extra < impl_->extra_id_to_token.size()) return impl_->extra_id_to_token[extra];
  fail(impl_->path, ": id ", id, " is not in the vocabulary");
}
int64_t JsonTokenizer::pad_token_id() const { return impl_->pad_id; }
int64_t JsonTokenizer::model_max_length() const { return impl_->model_max_length; }
std::vector<std::string> JsonTokenizer::model_input_names() const {
  if (impl_->token_types) return {"input_ids", "token_type_ids", "attention_mask"};
  return {"input_ids", "attention_mask"};
}
std::string JsonTokenizer::describe() const {
  std::string s = "tokenizer.json: " + impl_->model->name();
  if (impl_->normalizer) s += ", normalizer " + impl_->normalizer->name();
  if (impl_->pre_tokenizer) s += ", pre-tokenizer " + impl_->pre_tokenizer->name();
  return s;
}

}  // namespace mmx::text
