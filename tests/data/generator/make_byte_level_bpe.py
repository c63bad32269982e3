#!/usr/bin/env python3
"""A byte-level BPE tokenizer in RoBERTa's layout, and its slow-tokenizer ids, for mmx's tokenizer.json reader.

    /usr/bin/python3 make_byte_level_bpe.py

Needs Debian's python3-regex (2022.x), the module GPT-2's encoder.py and transformers' slow
RobertaTokenizer split text with. Writes tests/data/tokenizers/bpe-roberta/{vocab.json, merges.txt,
tokenizer.json, tokenizer_config.json} and tests/data/tokenizers/bpe_cases.json:

* merges: 700 learned here from the corpus below by the classic procedure (count adjacent symbol pairs
  over GPT-2-regex words mapped through bytes_to_unicode, merge the most frequent, ties by the pair's
  text); vocabulary <s> <pad> </s> <unk>, the 256 byte characters, the merged symbols, <mask> last.
* tokenizer.json: what transformers' RobertaConverter makes of such files (BPE with no unknown token,
  ByteLevel pre-tokenizer with add_prefix_space false, RobertaProcessing), written by this script.
* bpe_cases.json: the ids of RobertaTokenizer's slow algorithm (tokenization_roberta.py), reimplemented
  below: added tokens split out first (<mask> with lstrip), regex.findall with GPT-2's pattern, each
  piece's UTF-8 bytes mapped to characters, GPT-2's bpe() (the lowest-ranked pair, all its occurrences
  merged left to right, until no pair has a rank), "<s> A </s>".
"""
import json
from collections import Counter
from pathlib import Path

import regex

DATA = Path(__file__).resolve().parent.parent
TOK = DATA / "tokenizers"
PAT = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


BYTE = bytes_to_unicode()


def words(text):
    return ["".join(BYTE[b] for b in w.encode("utf-8")) for w in PAT.findall(text)]


bert = json.loads((TOK / "bert_cases.json").read_text())
clip = json.loads((TOK / "clip_cases.json").read_text())
texts = [c["text"] for c in bert["cases"]] + [c["text"] for c in clip["cases"]]
extra = ["", " ", "  two  spaces  ", "tabs\tand\nnew lines\n\n", "The <mask> sat on the mat.", "<mask> first",
         "a<mask>b", "emoji 🐱🐈 and ZWJ 👩‍💻", "Le chat est assis sur le canapé.", "猫はソファの上で寝ています。",
         "don't won't they're I've we'll he'd I'm", "numbers 12345 and 3.14159", "x" * 300,
         "Le chat est assis sur le canapé, près de la fenêtre. " * 150]

# ---- learn merges ----
freq = Counter()
for t in texts:
    for w in words(t):
        freq[tuple(w)] += 1
merges = []
for _ in range(700):
    pairs = Counter()
    for w, f in freq.items():
        for a, b in zip(w, w[1:]):
            pairs[(a, b)] += f
    if not pairs:
        break
    best = max(pairs.items(), key=lambda kv: (kv[1], [-ord(c) for c in kv[0][0] + kv[0][1]]))[0]
    merges.append(best)
    new = Counter()
    for w, f in freq.items():
        out, i = [], 0
        while i < len(w):
            if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                out.append(w[i] + w[i + 1])
                i += 2
            else:
                out.append(w[i])
                i += 1
        new[tuple(out)] += f
    freq = new

vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
for c in sorted(BYTE.values()):
    vocab.setdefault(c, len(vocab))
for a, b in merges:
    vocab.setdefault(a + b, len(vocab))
vocab["<mask>"] = len(vocab)
ranks = {m: i for i, m in enumerate(merges)}


def bpe(token):  # GPT-2's encoder.py / tokenization_roberta.py
    word = tuple(token)
    while len(word) > 1:
        pairs = set(zip(word, word[1:]))
        bigram = min(pairs, key=lambda p: ranks.get(p, float("inf")))
        if bigram not in ranks:
            break
        first, second = bigram
        new, i = [], 0
        while i < len(word):
            try:
                j = word.index(first, i)
            except ValueError:
                new.extend(word[i:])
                break
            new.extend(word[i:j])
            i = j
            if word[i] == first and i < len(word) - 1 and word[i + 1] == second:
                new.append(first + second)
                i += 2
            else:
                new.append(word[i])
                i += 1
        word = tuple(new)
    return word


def slow_ids(text):
    ids = []
    parts = text.split("<mask>")
    for k, part in enumerate(parts):
        if k + 1 < len(parts):
            part = part.rstrip()  # <mask> has lstrip
        for w in words(part):
            ids.extend(vocab[p] for p in bpe(w))
        if k + 1 < len(parts):
            ids.append(vocab["<mask>"])
    return [0] + ids + [2]


out = TOK / "bpe-roberta"
out.mkdir(exist_ok=True)
(out / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False) + "\n")
(out / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))


def added(i, content, lstrip=False, normalized=True):
    return {"id": i, "content": content, "single_word": False, "lstrip": lstrip, "rstrip": False, "normalized": normalized,
            "special": True}


tokenizer_json = {
    "version": "1.0", "truncation": None, "padding": None,
    "added_tokens": [added(0, "<s>"), added(1, "<pad>"), added(2, "</s>"), added(3, "<unk>"),
                     added(vocab["<mask>"], "<mask>", True, False)],
    "normalizer": None,
    "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
    "post_processor": {"type": "RobertaProcessing", "sep": ["</s>", 2], "cls": ["<s>", 0], "trim_offsets": True,
                       "add_prefix_space": False},
    "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
    "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "", "end_of_word_suffix": "",
              "fuse_unk": False, "byte_fallback": False, "vocab": vocab, "merges": [f"{a} {b}" for a, b in merges]},
}
(out / "tokenizer.json").write_text(json.dumps(tokenizer_json, ensure_ascii=False) + "\n")
(out / "tokenizer_config.json").write_text(json.dumps(
    {"tokenizer_class": "RobertaTokenizer", "model_max_length": 512, "add_prefix_space": False, "pad_token": "<pad>"}) + "\n")
cases = [{"text": t, "input_ids": slow_ids(t)} for t in texts + extra]
(TOK / "bpe_cases.json").write_text(json.dumps(
    {"reference": "RobertaTokenizer's slow algorithm (GPT-2 regex via the regex module, bytes_to_unicode, bpe()) on "
                  "tokenizers/bpe-roberta; input_ids = tokenizer(text)", "cases": cases}, ensure_ascii=False, indent=0) + "\n")
print(len(merges), "merges,", len(vocab), "tokens,", len(cases), "cases")
