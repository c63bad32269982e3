#!/usr/bin/env python3
"""sentence-transformers fixtures for mmx: two folders around tests/data/models/bert-tiny and the
outputs of sentence-transformers' own Pooling, Dense and Normalize modules on the reference's hidden states.

    python3 make_sentence_transformers.py ST_SRC

ST_SRC holds sentence_transformers/models/{Module,Pooling,Dense,Normalize}.py of a sentence-transformers
checkout (5.2.0.dev0 at 85ec6455 made the committed files). Only those modules run: transformers is not
installable here, so the Transformer module's output is the golden `last_hidden_state` of
tests/data/expected/bert-tiny.safetensors (transformers 4.45's BertModel on the lab's eight texts, padded
to 7 tokens), which is what SentenceTransformer.encode hands to Pooling for those texts (they have no
surrounding whitespace, are shorter than max_seq_length, and the folders name no default prompt).
The saving side of sentence-transformers needs the safetensors package, which is stubbed: the Dense
weights are written by the small writer below. Deterministic (torch.manual_seed).
"""
import json
import os
import sys
import types
from pathlib import Path

import torch

if len(sys.argv) != 2:
    sys.exit("usage: make_sentence_transformers.py ST_SRC")
DATA = Path(__file__).resolve().parent.parent          # tests/data
MODELS = DATA / "models"

# Stubs for what Module.py imports but the forward passes never use.
safetensors = types.ModuleType("safetensors")
safetensors_torch = types.ModuleType("safetensors.torch")
for name in ("load_file", "load_model", "save_model"):
    setattr(safetensors_torch, name, None)
safetensors.torch = safetensors_torch
sys.modules["safetensors"], sys.modules["safetensors.torch"] = safetensors, safetensors_torch
st_util = types.ModuleType("sentence_transformers.util")
st_util.load_dir_path = st_util.load_file_path = None
st_util.fullname = lambda o: type(o).__module__ + "." + type(o).__qualname__
st_util.import_from_string = None
st_pkg = types.ModuleType("sentence_transformers")
st_pkg.__path__ = [os.path.join(sys.argv[1], "sentence_transformers")]
st_models = types.ModuleType("sentence_transformers.models")
st_models.__path__ = [os.path.join(sys.argv[1], "sentence_transformers", "models")]
sys.modules.update({"sentence_transformers": st_pkg, "sentence_transformers.util": st_util,
                    "sentence_transformers.models": st_models})
from sentence_transformers.models.Dense import Dense  # noqa: E402
from sentence_transformers.models.Normalize import Normalize  # noqa: E402
from sentence_transformers.models.Pooling import Pooling  # noqa: E402

torch.set_grad_enabled(False)


from safetensors_io import read_safetensors, write_safetensors  # noqa: E402  (beside this script)


def write_json(path, obj):
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(obj, indent=2) + "\n")


def link_model(folder, target):
    """The bert-tiny files, linked (as the CLIP folder links its vocabulary) rather than copied."""
    folder.mkdir(parents=True, exist_ok=True)
    for f in ("config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        p = folder / f
        if p.is_symlink() or p.exists():
            p.unlink()
        p.symlink_to(os.path.relpath(MODELS / "bert-tiny" / f, folder))


ref = read_safetensors(DATA / "expected" / "bert-tiny.safetensors")
features = lambda: {"token_embeddings": ref["last_hidden_state"].clone(),  # noqa: E731
                    "attention_mask": ref["attention_mask"].clone()}
version = {"sentence_transformers": "5.2.0.dev0", "transformers": "4.45.0.dev0", "pytorch": torch.__version__}
expected = {}

# Every Pooling mode alone, as Pooling(32, pooling_mode=m) computes it.
for mode in Pooling.POOLING_MODES:
    expected["pooling_" + mode] = Pooling(32, pooling_mode=mode)(features())["sentence_embedding"]

# 1. st-bert-tiny: the layout of all-MiniLM-L6-v2 / bge-small-en-v1.5 — the Transformer in the root, mean
#    pooling, Normalize; query/passage prompts as e5 names them, none by default.
a = MODELS / "st-bert-tiny"
link_model(a, MODELS / "bert-tiny")
write_json(a / "modules.json", [
    {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
    {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}])
write_json(a / "sentence_bert_config.json", {"max_seq_length": 128, "do_lower_case": False})
pool_a = Pooling(32, pooling_mode="mean")
write_json(a / "1_Pooling" / "config.json", pool_a.get_config_dict())
write_json(a / "config_sentence_transformers.json", {
    "__version__": version, "prompts": {"query": "query: ", "passage": "passage: "}, "default_prompt_name": None,
    "similarity_fn_name": "cosine"})
expected["st_bert_tiny"] = Normalize()(pool_a(features()))["sentence_embedding"]

# 2. st-bert-tiny-dense: the older layout (0_Transformer/) with three concatenated poolings, a Dense layer
#    (tanh) and Normalize, prompts left out of the pooling, dot-product similarity.
b = MODELS / "st-bert-tiny-dense"
link_model(b / "0_Transformer", MODELS / "bert-tiny")
write_json(b / "0_Transformer" / "sentence_bert_config.json", {"max_seq_length": 64, "do_lower_case": True})
write_json(b / "modules.json", [
    {"idx": 0, "name": "0", "path": "0_Transformer", "type": "sentence_transformers.models.Transformer"},
    {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"},
    {"idx": 3, "name": "3", "path": "3_Normalize", "type": "sentence_transformers.models.Normalize"}])
pool_b = Pooling(32, pooling_mode_cls_token=True, pooling_mode_max_tokens=True, pooling_mode_mean_tokens=False,
                 pooling_mode_mean_sqrt_len_tokens=True, include_prompt=False)
write_json(b / "1_Pooling" / "config.json", pool_b.get_config_dict())
torch.manual_seed(20)
dense = Dense(96, 16, bias=True, activation_function=torch.nn.Tanh())
torch.nn.init.normal_(dense.linear.bias, std=0.1)
write_json(b / "2_Dense" / "config.json", dense.get_config_dict())
write_safetensors(b / "2_Dense" / "model.safetensors", {k: v for k, v in dense.state_dict().items()})
write_json(b / "config_sentence_transformers.json", {
    "__version__": version, "prompts": {"query": "Represent this sentence for searching relevant passages: "},
    "default_prompt_name": None, "similarity_fn_name": "dot"})
expected["st_bert_tiny_dense"] = Normalize()(dense(pool_b(features())))["sentence_embedding"]
# The same folder's modules without Normalize and without Dense, to locate a difference.
expected["st_bert_tiny_dense_pooled"] = pool_b(features())["sentence_embedding"]
expected["st_bert_tiny_dense_unnormalized"] = dense(pool_b(features()))["sentence_embedding"]

write_safetensors(DATA / "expected" / "st-bert-tiny.safetensors", expected)
print("wrote", ", ".join(f"{k} {tuple(v.shape)}" for k, v in expected.items()))
