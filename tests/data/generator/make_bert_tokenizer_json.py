#!/usr/bin/env python3
"""tests/data/tokenizers/bert-base-uncased-fast/: bert-base-uncased's tokenizer as a folder holding only
tokenizer.json (the `tokenizers` library's format), built from the real vocab.txt with the components
transformers' BertConverter (convert_slow_tokenizer.py, 4.45) gives BertTokenizerFast: BertNormalizer
(clean_text, handle_chinese_chars, strip_accents null, lowercase), BertPreTokenizer, TemplateProcessing
"[CLS]:0 $A:0 [SEP]:0" / "[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1", WordPiece decoder, WordPiece model
(unk [UNK], "##", 100 characters), the five specials as added tokens. The `tokenizers` package is not
installable here, so the file is written field by field in its serialization; the reference ids are the
slow tokenizer's (tokenizers/bert_cases.json), which BertTokenizerFast is converted to reproduce.

    python3 make_bert_tokenizer_json.py
"""
import json
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent
vocab = DATA.joinpath("tokenizers", "bert-base-uncased", "vocab.txt").read_text(encoding="utf-8").split("\n")
if vocab and vocab[-1] == "":
    vocab.pop()
ids = {token: i for i, token in enumerate(vocab)}
special = lambda t: {"id": ids[t], "content": t, "single_word": False, "lstrip": False, "rstrip": False,  # noqa: E731
                     "normalized": False, "special": True}
tok = {
    "version": "1.0",
    "truncation": None,
    "padding": None,
    "added_tokens": [special(t) for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")],
    "normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True,
                   "strip_accents": None, "lowercase": True},
    "pre_tokenizer": {"type": "BertPreTokenizer"},
    "post_processor": {
        "type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                   {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
        "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                 {"SpecialToken": {"id": "[SEP]", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}},
                 {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
        "special_tokens": {t: {"id": t, "ids": [ids[t]], "tokens": [t]} for t in ("[CLS]", "[SEP]")},
    },
    "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
    "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
              "max_input_chars_per_word": 100, "vocab": ids},
}
out = DATA / "tokenizers" / "bert-base-uncased-fast"
out.mkdir(parents=True, exist_ok=True)
(out / "tokenizer.json").write_text(json.dumps(tok, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
(out / "tokenizer_config.json").write_text(json.dumps(
    {"do_lower_case": True, "model_max_length": 512, "tokenizer_class": "BertTokenizerFast"}, indent=2) + "\n")
print(f"wrote {out}/tokenizer.json: {len(ids)} tokens")
