// tokenizer.json models: WordPiece, BPE and Unigram.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <queue>

#include "text/tokenizer_json_components.hpp"

namespace mmx::text::tokenizer_json {
namespace {

struct WordPiece : Model {
  std::string unk_token, prefix;
  size_t max_chars;
  int64_t unk_id;
  WordPiece(const Json& j, const Where& w) {
    read_vocab_object(member(j, w, "vocab"), w.at("vocab"));
    unk_token = string_member(j, w, "unk_token");
    prefix = j.contains("continuing_subword_prefix") && j["continuing_subword_prefix"].is_string()
                 ? j["continuing_subword_prefix"].get<std::string>()
                 : "##";
    max_chars = size_t(j.value("max_input_chars_per_word", 100));
    const auto unk = lookup(unk_token);
    if (!unk) w.at("unk_token").fail("'", unk_token, "' is not in the vocabulary");
    unk_id = *unk;
  }
  void tokenize(const U32& word, std::vector<Token>& out) const override {
    if (word.size() > max_chars) {
      out.push_back({unk_id, unk_token});
      return;
    }
    std::vector<Token> pieces;
    for (size_t start = 0; start < word.size();) {
      size_t end = word.size();
      std::optional<Token> found;
      for (; end > start; --end) {
        const std::string sub =
            (start > 0 ? prefix : "") + u32_to_utf8(std::u32string_view(word).substr(start, end - start));
        if (const auto id = lookup(sub)) {
          found = Token{*id, sub};
          break;
        }
      }
      if (!found) {  // one piece not in the vocabulary makes the whole word unknown
        out.push_back({unk_id, unk_token});
        return;
      }
      pieces.push_back(std::move(*found));
      start = end;
    }
    out.insert(out.end(), pieces.begin(), pieces.end());
  }
  std::string name() const override { return str("WordPiece (", vocab.size(), " pieces)"); }
};

struct Bpe : Model {
  std::optional<std::string> unk_token;
  std::string prefix, suffix;
  bool fuse_unk, byte_fallback, ignore_merges;
  struct PairHash {
    size_t operator()(const std::pair<int64_t, int64_t>& p) const {
      return std::hash<int64_t>()(p.first * 1000003 + p.second);
    }
  };
  std::unordered_map<std::pair<int64_t, int64_t>, std::pair<int64_t, int64_t>, PairHash> merges;  // → (rank, new id)
  Bpe(const Json& j, const Where& w) {
    if (j.contains("dropout") && !j["dropout"].is_null() && j["dropout"].get<double>() > 0)
      w.at("dropout").fail("is set: BPE dropout is for training, and mmx encodes deterministically");
    read_vocab_object(member(j, w, "vocab"), w.at("vocab"));
    if (j.contains("unk_token") && j["unk_token"].is_string()) unk_token = j["unk_token"].get<std::string>();
    prefix = j.contains("continuing_subword_prefix") && j["continuing_subword_prefix"].is_string()
                 ? j["continuing_subword_prefix"].get<std::string>()
                 : "";
    suffix = j.contains("end_of_word_suffix") && j["end_of_word_suffix"].is_string()
                 ? j["end_of_word_suffix"].get<std::string>()
                 : "";
    fuse_unk = bool_member(j, w, "fuse_unk", false);
    byte_fallback = bool_member(j, w, "byte_fallback", false);
    ignore_merges = bool_member(j, w, "ignore_merges", false);
    const Json& list = member(j, w, "merges");
    if (!list.is_array()) w.at("merges").fail("is not a list");
    for (size_t rank = 0; rank < list.size(); ++rank) {
      std::string a, b;
      const Json& m = list[rank];
      if (m.is_string()) {  // "a b"
        const std::string s = m.get<std::string>();
        const size_t space = s.find(' ');
        if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos)
          w.at("merges").at(rank).fail("'", s, "' is not two tokens separated by one space");
        a = s.substr(0, space);
        b = s.substr(space + 1);
      } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {  // ["a", "b"]
        a = m[0].get<std::string>();
        b = m[1].get<std::string>();
      } else {
        w.at("merges").at(rank).fail("is neither \"a b\" nor [\"a\", \"b\"]");
      }
      const auto ia = lookup(a), ib = lookup(b);
      const std::string merged = a + (b.compare(0, prefix.size(), prefix) == 0 ? b.substr(prefix.size()) : b);
      const auto im = lookup(merged);
      if (!ia || !ib || !im)
        w.at("merges").at(rank).fail("'", a, " ", b, "' merges tokens that are not in the vocabulary");
      merges.emplace(std::make_pair(*ia, *ib), std::make_pair(int64_t(rank), *im));
    }
  }
  void tokenize(const U32& word, std::vector<Token>& out) const override {
    const std::string whole = u32_to_utf8(word);
    if (ignore_merges)
      if (const auto id = lookup(whole)) {
        out.push_back({*id, whole});
        return;
      }
    // Characters → symbols (BPE::merge_word): a character outside the vocabulary becomes its bytes
    // (byte_fallback), else the unknown token, a run of them one token with fuse_unk; without an unknown
    // token it is dropped, as tokenizers does. A pending unknown token is placed at the next known character.
    std::vector<int64_t> symbols;
    const std::optional<int64_t> unk_id = unk_token ? lookup(*unk_token) : std::nullopt;
    bool pending_unk = false;
    for (size_t i = 0; i < word.size(); ++i) {
      std::string piece = u32_to_utf8(std::u32string_view(word).substr(i, 1));
      if (i > 0) piece = prefix + piece;
      if (i + 1 == word.size()) piece += suffix;
      if (const auto id = lookup(piece)) {
        if (pending_unk) symbols.push_back(*unk_id);
        pending_unk = false;
        symbols.push_back(*id);
        continue;
      }
      if (byte_fallback) {
        std::vector<int64_t> bytes;
        for (unsigned char byte : piece) {
          char name[8];
          std::snprintf(name, sizeof name, "<0x%02X>", byte);
          if (const auto id = lookup(name)) bytes.push_back(*id);
        }
        if (bytes.size() == piece.size()) {
          symbols.insert(symbols.end(), bytes.begin(), bytes.end());
          continue;
        }
      }
      if (!unk_id) continue;
      if (pending_unk && !fuse_unk) symbols.push_back(*unk_id);
      pending_unk = true;
    }
    if (pending_unk) symbols.push_back(*unk_id);
    // Merge the lowest-ranked adjacent pair until none is mergeable, leftmost first on equal ranks: a
    // heap of candidate pairs over a linked list of symbols, O(n log n) (a 24 kB word took 0.8 s
    // rescanning every pair after each merge). A popped pair whose sides changed since it was pushed is stale.
    const size_t n = symbols.size();
    std::vector<size_t> next(n), prev(n);
    std::vector<bool> alive(n, true);
    for (size_t i = 0; i < n; ++i) {
      next[i] = i + 1;
      prev[i] = i - 1;  // wraps for the first symbol: never read, it has no left neighbour
    }
    struct Candidate {
      int64_t rank;
      size_t left;
      int64_t left_id, right_id;
      bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
    };
    std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
    auto push = [&](size_t left) {
      if (left >= n || next[left] >= n) return;
      const auto it = merges.find({symbols[left], symbols[next[left]]});
      if (it != merges.end()) heap.push({it->second.first, left, symbols[left], symbols[next[left]]});
    };
    for (size_t i = 0; i + 1 < n; ++i) push(i);
    while (!heap.empty()) {
      const Candidate c = heap.top();
      heap.pop();
      const size_t right = next[c.left];
      if (!alive[c.left] || right >= n || symbols[c.left] != c.left_id || symbols[right] != c.right_id) continue;
      symbols[c.left] = merges.at({c.left_id, c.right_id}).second;
      alive[right] = false;
      next[c.left] = next[right];
      if (next[right] < n) prev[next[right]] = c.left;
      if (c.left > 0) push(prev[c.left]);
      push(c.left);
    }
    std::vector<int64_t> merged;
    for (size_t i = 0; i < n; i = next[i]) merged.push_back(symbols[i]);
    symbols = std::move(merged);
    for (int64_t id : symbols) out.push_back({id, id_to_token[size_t(id)]});
  }
  std::string name() const override { return str("BPE (", vocab.size(), " tokens, ", merges.size(), " merges)"); }
};

struct Unigram : Model {
  std::vector<double> scores;
  std::optional<int64_t> unk_id;
  bool byte_fallback;
  double unk_score = 0;
  size_t max_piece_chars = 1;
  std::unordered_map<U32, int64_t> pieces;
  Unigram(const Json& j, const Where& w) {
    const Json& list = member(j, w, "vocab");
    if (!list.is_array() || list.empty()) w.at("vocab").fail("is not a list of [piece, score]");
    double min_score = std::numeric_limits<double>::max();
    id_to_token.reserve(list.size());  // XLM-R's 250 002 pieces: no rehashing on the way
    vocab.reserve(list.size());
    pieces.reserve(list.size());
    scores.reserve(list.size());
    for (size_t i = 0; i < list.size(); ++i) {
      const Json& e = list[i];
      if (!e.is_array() || e.size() != 2 || !e[0].is_string() || !e[1].is_number())
        w.at("vocab").at(i).fail("is not [piece, score]");
      const std::string piece = e[0].get<std::string>();
      const U32 chars = utf8_to_u32(piece, w.path + ": " + w.at("vocab").at(i).key);
      id_to_token.push_back(piece);
      vocab.emplace(piece, int64_t(i));
      pieces.emplace(chars, int64_t(i));
      scores.push_back(e[1].get<double>());
      min_score = std::min(min_score, scores.back());
      max_piece_chars = std::max(max_piece_chars, chars.size());
    }
    if (j.contains("unk_id") && !j["unk_id"].is_null()) {
      if (!j["unk_id"].is_number_integer() || j["unk_id"].get<int64_t>() < 0 ||
          j["unk_id"].get<size_t>() >= list.size())
        w.at("unk_id").fail("is not an id of the vocabulary");
      unk_id = j["unk_id"].get<int64_t>();
    }
    byte_fallback = bool_member(j, w, "byte_fallback", false);
    unk_score = min_score - 10.0;  // tokenizers' K_UNK_PENALTY
  }
  // The best-scoring segmentation (Viterbi over every vocabulary piece starting at every character; a
  // character no one-character piece covers is the unknown piece), unknown runs fused into one.
  void tokenize(const U32& word, std::vector<Token>& out) const override {
    const size_t n = word.size();
    std::vector<double> best(n + 1, -std::numeric_limits<double>::infinity());
    std::vector<std::pair<size_t, int64_t>> back(n + 1, {0, -1});  // (start, id; -1 = unknown)
    best[0] = 0;
    for (size_t s = 0; s < n; ++s) {
      if (best[s] == -std::numeric_limits<double>::infinity()) continue;
      bool single = false;
      U32 sub;
      for (size_t len = 1; len <= max_piece_chars && s + len <= n; ++len) {
        sub.push_back(word[s + len - 1]);
        const auto it = pieces.find(sub);
        if (it == pieces.end()) continue;
        if (len == 1) single = true;
        const double score = best[s] + scores[size_t(it->second)];
        if (score > best[s + len]) {
          best[s + len] = score;
          back[s + len] = {s, it->second};
        }
      }
      if (!single && unk_id) {
        const double score = best[s] + unk_score;
        if (score > best[s + 1]) {
          best[s + 1] = score;
          back[s + 1] = {s, -1};
        }
      }
    }
    if (n > 0 && best[n] == -std::numeric_limits<double>::infinity())
      fail("Unigram: '", u32_to_utf8(word), "' cannot be segmented (no unk_id and characters outside the vocabulary)");
    std::vector<std::pair<U32, int64_t>> path;
    for (size_t e = n; e > 0; e = back[e].first)
      path.emplace_back(word.substr(back[e].first, e - back[e].first), back[e].second);
    std::reverse(path.begin(), path.end());
    for (size_t i = 0; i < path.size(); ++i) {
      if (path[i].second >= 0) {
        out.push_back({path[i].second, id_to_token[size_t(path[i].second)]});
        continue;
      }
      U32 unknown = path[i].first;  // fuse_unk: a run of unknown characters is one token
      while (i + 1 < path.size() && path[i + 1].second < 0) unknown += path[++i].first;
      if (byte_fallback) {
        std::vector<Token> bytes;
        for (unsigned char b : u32_to_utf8(unknown)) {
          char name[8];
          std::snprintf(name, sizeof name, "<0x%02X>", b);
          if (const auto id = lookup(name)) bytes.push_back({*id, name});
        }
        if (bytes.size() == u32_to_utf8(unknown).size()) {
          out.insert(out.end(), bytes.begin(), bytes.end());
          continue;
        }
      }
      out.push_back({*unk_id, u32_to_utf8(unknown)});
    }
  }
  std::string name() const override { return str("Unigram (", pieces.size(), " pieces)"); }
};

}  // namespace

std::unique_ptr<Model> make_model(const Json& j, const Where& w) {
  const std::string type = j.is_object() && j.contains("type")                             ? type_of(j, w)
                           : j.is_object() && j.contains("merges")                         ? "BPE"
                           : j.is_object() && j.contains("vocab") && j["vocab"].is_array() ? "Unigram"
                                                                                           : "WordPiece";
  if (type == "WordPiece") return std::make_unique<WordPiece>(j, w);
  if (type == "BPE") return std::make_unique<Bpe>(j, w);
  if (type == "Unigram") return std::make_unique<Unigram>(j, w);
  unsupported(w, type, "WordPiece, BPE, Unigram");
}

}  // namespace mmx::text::tokenizer_json
