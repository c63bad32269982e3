#!/usr/bin/env python3
"""tokenizer.json fixtures for mmx's reader of the `tokenizers` serialization (src/text/tokenizer_json.cpp).

    /usr/bin/python3 make_tokenizer_json_cases.py

Needs Debian's python3-sentencepiece (0.1.97 made the committed files). Writes into tests/data/tokenizers/:

* unigram-xlmr/: a SentencePiece Unigram model trained here (nmt_nfkc normalisation, at most 1200 pieces: 744) on the
  corpus below, and the tokenizer.json that transformers' XLMRobertaConverter (convert_slow_tokenizer.py,
  SpmConverter) makes of it — Precompiled + Strip + Replace normalizer, Metaspace, Unigram with
  <s> <pad> </s> <unk> first and <mask> last, the "<s> $A </s>" / "<s> $A </s> </s> $B </s>" template —
  written by this script as the converter writes it (the tokenizers package is not installable here).
  unigram_cases.json holds the ids of XLMRobertaTokenizer's slow algorithm, which is SentencePiece
  itself: sp.encode(text, out_type=str), piece ids shifted by fairseq's offset of one, SentencePiece's
  <unk> → 3, and <mask> split out first with lstrip as the slow tokenizer's added token.
* clip-fast/tokenizer_template.json: CLIPConverter's serialization of the real CLIP vocab.json / merges.txt
  (tokenizers/clip): NFC + Replace(\\s+ → " ") + Lowercase, Split(CLIP's regex, removed, invert) +
  ByteLevel(add_prefix_space false), BPE with end_of_word_suffix </w>, RobertaProcessing. The expected
  ids are clip_cases.json's (transformers' slow CLIPTokenizer), on the cases it does not flag as ones
  where the fast tokenizer may differ.
"""
import base64
import json
import random
from pathlib import Path

import sentencepiece as spm

DATA = Path(__file__).resolve().parent.parent
TOK = DATA / "tokenizers"

# ---- the corpus: the BERT and CLIP corpora's texts plus multilingual sentences and edge cases ----
bert = json.loads((TOK / "bert_cases.json").read_text())
clip = json.loads((TOK / "clip_cases.json").read_text())
texts = [c["text"] for c in bert["cases"]] + [c["text"] for c in clip["cases"]]
multilingual = [
    "Le chat est assis sur le canapé, près de la fenêtre.",
    "Der schnelle braune Fuchs springt über den faulen Hund.",
    "El niño comió una manzana roja en el jardín.",
    "Кошка спит на диване весь день.",
    "猫はソファの上で寝ています。",
    "我的猫喜欢在沙发上睡觉。",
    "고양이가 소파 위에서 자고 있어요.",
    "القطة نائمة على الأريكة.",
    "बिल्ली सोफे पर सो रही है।",
    "Η γάτα κοιμάται στον καναπέ.",
    "Kedi kanepede uyuyor, çok tatlı!",
    "Mèo đang ngủ trên ghế sofa.",
    "ﬁne ligatures and ｆｕｌｌｗｉｄｔｈ letters, ① circled, ½ fractions",
    "query: how do cats sleep?",
    "passage: Cats sleep 12 to 16 hours a day.",
]
train = texts + multilingual
random.seed(0)
corpus_file = Path("/tmp/mmx_spm_corpus.txt")
corpus_file.write_text("\n".join(t for t in train * 3 if t.strip() and "\n" not in t) + "\n")
prefix = "/tmp/mmx_spm_unigram"
spm.SentencePieceTrainer.train(input=str(corpus_file), model_prefix=prefix, vocab_size=1200, model_type="unigram",
                               normalization_rule_name="nmt_nfkc", character_coverage=0.9995, hard_vocab_limit=False,
                               seed_sentencepiece_size=20000, num_threads=1, minloglevel=2)
sp = spm.SentencePieceProcessor(model_file=prefix + ".model")

# The converter reads the model proto; SentencePiece's Python API gives pieces, scores and types, and
# the charsmap comes from the serialized proto (normalizer_spec, field 3: its precompiled_charsmap, field 2).
model_bytes = Path(prefix + ".model").read_bytes()


def read_varint(b, i):
    v = s = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << s
        s += 7
        if c < 0x80:
            return v, i


def fields(b):
    i = 0
    while i < len(b):
        key, i = read_varint(b, i)
        num, wt = key >> 3, key & 7
        if wt == 2:
            n, i = read_varint(b, i)
            yield num, b[i:i + n]
            i += n
        elif wt == 0:
            _, i = read_varint(b, i)
        elif wt == 5:
            i += 4
        elif wt == 1:
            i += 8
        else:
            raise ValueError("unexpected wire type")


normalizer_spec = [v for n, v in fields(model_bytes) if n == 3][0]
charsmap = [v for n, v in fields(normalizer_spec) if n == 2][0]

pieces = [(sp.id_to_piece(i), sp.get_score(i)) for i in range(sp.get_piece_size())]
vocab = [["<s>", 0.0], ["<pad>", 0.0], ["</s>", 0.0], ["<unk>", 0.0]] + [[p, s] for p, s in pieces[3:]] + [["<mask>", 0.0]]
mask_id = len(vocab) - 1


def added(i, content, lstrip=False):
    return {"id": i, "content": content, "single_word": False, "lstrip": lstrip, "rstrip": False, "normalized": False,
            "special": True}


def special(name, i):
    return {"id": name, "ids": [i], "tokens": [name]}


tokenizer_json = {
    "version": "1.0",
    "truncation": None,
    "padding": None,
    "added_tokens": [added(0, "<s>"), added(1, "<pad>"), added(2, "</s>"), added(3, "<unk>"), added(mask_id, "<mask>", True)],
    "normalizer": {"type": "Sequence", "normalizers": [
        {"type": "Precompiled", "precompiled_charsmap": base64.b64encode(charsmap).decode()},
        {"type": "Strip", "strip_left": False, "strip_right": True},
        {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": "▁"}]},
    "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": True},
    "post_processor": {"type": "TemplateProcessing",
                       "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                                  {"SpecialToken": {"id": "</s>", "type_id": 0}}],
                       "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                                {"SpecialToken": {"id": "</s>", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}},
                                {"Sequence": {"id": "B", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}}],
                       "special_tokens": {"<s>": special("<s>", 0), "</s>": special("</s>", 2)}},
    "decoder": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": True},
    "model": {"type": "Unigram", "unk_id": 3, "vocab": vocab, "byte_fallback": False},
}
out = TOK / "unigram-xlmr"
out.mkdir(exist_ok=True)
(out / "tokenizer.json").write_text(json.dumps(tokenizer_json, ensure_ascii=False, indent=1) + "\n")
(out / "tokenizer_config.json").write_text(json.dumps(
    {"tokenizer_class": "XLMRobertaTokenizer", "model_max_length": 512, "bos_token": "<s>", "eos_token": "</s>",
     "unk_token": "<unk>", "sep_token": "</s>", "pad_token": "<pad>", "cls_token": "<s>",
     "mask_token": {"content": "<mask>", "lstrip": True, "normalized": False, "rstrip": False, "single_word": False}},
    indent=1) + "\n")
(out / "sentencepiece.bpe.model").write_bytes(model_bytes)


def slow_ids(text):
    """XLMRobertaTokenizer (slow): <mask> split out (lstrip eats the spaces before it), the rest through
    SentencePiece, ids shifted by one, SentencePiece's unknown (0) → 3."""
    ids = []
    parts = text.split("<mask>")
    for k, part in enumerate(parts):
        if k + 1 < len(parts):
            part = part.rstrip()
        if part:
            for p in sp.encode(part, out_type=str):
                i = sp.piece_to_id(p)
                ids.append(3 if i == 0 else i + 1)
        if k + 1 < len(parts):
            ids.append(mask_id)
    return ids


extra = [
    "", " ", "   leading and trailing   ", "two  spaces\tand\ttabs\nand newlines", "The <mask> sat on the mat.",
    "<mask> first", "a<mask>b", "emoji 🐱🐈 and ZWJ 👩‍💻 family 👨‍👩‍👧", "Å vs A\u030a (decomposed)", "x" * 300,
    "caf\u00e9 cafe\u0301", "\u00a0non-breaking\u00a0space", "half-width ｶﾀｶﾅ and ㌀ squared",
    " ".join(multilingual) * 20,  # a long text (about 10 kB)
]
# Exact ties. SentencePiece sums float32 scores in float32, so of several segmentations with the same
# exact score it keeps whichever rounding favours; tokenizers sums in f64 (exactly, for these scores) and
# keeps the one whose last piece starts first. Where a word has several optimal segmentations the case
# is marked "tied": the test then asks for a segmentation with the same optimal score, not SentencePiece's.
from fractions import Fraction  # noqa: E402

piece_score = {p: Fraction(s) for p, s in pieces[3:]}
longest = max(len(p) for p in piece_score)


def optimal_paths(word):
    best = [None] * (len(word) + 1)
    count = [0] * (len(word) + 1)
    best[0], count[0] = Fraction(0), 1
    for i in range(len(word)):
        if best[i] is None:
            continue
        for j in range(i + 1, min(len(word), i + longest) + 1):
            sc = piece_score.get(word[i:j])
            if sc is None:
                continue
            v = best[i] + sc
            if best[j] is None or v > best[j]:
                best[j], count[j] = v, count[i]
            elif v == best[j]:
                count[j] += count[i]
    return count[len(word)]


def tied(text):
    words = []  # [word, holds an unknown piece]
    for part in text.split("<mask>"):
        for p in sp.encode(part.rstrip() if "<mask>" in text else part, out_type=str):
            if p.startswith("▁") or not words:
                words.append([p, False])
            else:
                words[-1][0] += p
            words[-1][1] |= sp.piece_to_id(p) == 0
    return any(not unknown and optimal_paths(w) > 1 for w, unknown in words)


cases = [{"text": t, "input_ids": [0] + slow_ids(t) + [2], "tied": tied(t)} for t in texts + multilingual + extra]
print(sum(c["tied"] for c in cases), "cases with exact ties")
(TOK / "unigram_cases.json").write_text(json.dumps(
    {"reference": f"SentencePiece {spm.__version__} (XLMRobertaTokenizer's slow algorithm: fairseq offset 1, <unk> 3, "
                  "<mask> 1200+ lstrip) on tokenizers/unigram-xlmr/sentencepiece.bpe.model; input_ids = tokenizer(text)",
     "cases": cases}, ensure_ascii=False, indent=0) + "\n")

# ---- CLIP's tokenizer.json, as CLIPConverter writes it ----
clip_vocab = json.loads((TOK / "clip" / "vocab.json").read_text())
merges = [m for m in (TOK / "clip" / "merges.txt").read_text().split("\n")[1:] if m]
clip_json = {
    "version": "1.0", "truncation": None, "padding": None,
    "added_tokens": [
        {"id": 49406, "content": "<|startoftext|>", "single_word": False, "lstrip": False, "rstrip": False, "normalized": True, "special": True},
        {"id": 49407, "content": "<|endoftext|>", "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}],
    "normalizer": {"type": "Sequence", "normalizers": [
        {"type": "NFC"}, {"type": "Replace", "pattern": {"Regex": "\\s+"}, "content": " "}, {"type": "Lowercase"}]},
    "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": "'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+"},
         "behavior": "Removed", "invert": True},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]},
    "post_processor": {"type": "RobertaProcessing", "sep": ["<|endoftext|>", 49407], "cls": ["<|startoftext|>", 49406],
                       "trim_offsets": False, "add_prefix_space": False},
    "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
    "model": {"type": "BPE", "dropout": None, "unk_token": "<|endoftext|>", "continuing_subword_prefix": "",
              "end_of_word_suffix": "</w>", "fuse_unk": False, "byte_fallback": False, "vocab": clip_vocab, "merges": merges},
}
# vocab and merges are the committed tokenizers/clip files: the test puts them into this template.
clip_json["model"]["vocab"], clip_json["model"]["merges"] = "FROM clip/vocab.json", "FROM clip/merges.txt"
(TOK / "clip-fast").mkdir(exist_ok=True)
(TOK / "clip-fast" / "tokenizer_template.json").write_text(json.dumps(clip_json, ensure_ascii=False, indent=1) + "\n")
(TOK / "clip-fast" / "tokenizer_config.json").write_text(json.dumps(
    {"tokenizer_class": "CLIPTokenizerFast", "model_max_length": 77, "pad_token": "<|endoftext|>"}) + "\n")
print(len(cases), "unigram cases;", sp.get_piece_size(), "pieces")
