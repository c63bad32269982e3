#!/usr/bin/env python3
"""Tiny random-weight XLM-RoBERTa, MPNet and DistilBERT models for mmx, as sentence-transformers folders,
with expected outputs from a float64 PyTorch reference of transformers' forward passes.

    /usr/bin/python3 make_text_encoders.py

transformers is not installable here (Debian packages torch, not transformers), so the reference below
is written module for module from transformers' modeling_roberta.py / modeling_xlm_roberta.py,
modeling_mpnet.py and modeling_distilbert.py (v4.45): RoBERTa's create_position_ids_from_input_ids,
MPNet's compute_position_bias / relative_position_bucket (the bucket arithmetic in float32 as there),
DistilBERT's fixed 1e-12 LayerNorms; the extended attention mask is (1 − mask) · finfo.min, as
get_extended_attention_mask makes it. Each folder holds config.json, model.safetensors, the Unigram
tokenizer of tokenizers/unigram-xlmr (run make_tokenizer_json_cases.py first) and sentence-transformers
modules in the root layout of the Hub's models:
  xlmr-tiny        mean pooling + Normalize, prompts "query: " / "passage: "  (intfloat/multilingual-e5-small's)
  mpnet-tiny       mean pooling + Normalize                                (all-mpnet-base-v2's)
  distilbert-tiny  cls pooling, no Normalize, similarity dot               (msmarco-distilbert-base-tas-b's)
Expected (tests/data/expected/<name>.safetensors): input_ids / attention_mask [3, 24] (rows of 24, 17
and 9 tokens, one pad id inside the first row), last_hidden_state, pooler_output where the model has a
pooler, st_embeddings of the lab's eight texts through the folder's modules, and for MPNet the buckets
of distances −300…300. Deterministic (torch.manual_seed(0)).
"""
import json
import math
import shutil
from pathlib import Path

import sentencepiece as spm
import torch
import torch.nn.functional as F
from safetensors_io import write_safetensors  # beside this script

DATA = Path(__file__).resolve().parent.parent
torch.manual_seed(0)
torch.set_grad_enabled(False)
D = torch.float64
LAB = ["Cat with paint", "rock statue", "frogs on leaf", "jellyfish", "Cats don't usually", "like water",
       "but this one likes paint", "quite a lot"]
TOK = DATA / "tokenizers" / "unigram-xlmr"
sp = spm.SentencePieceProcessor(model_file=str(TOK / "sentencepiece.bpe.model"))
VOCAB = len(json.loads((TOK / "tokenizer.json").read_text())["model"]["vocab"])


def randn(*shape, std=0.3):
    return (torch.randn(*shape) * std).to(torch.float32)


def linear_weights(w, name, n_in, n_out):
    w[name + ".weight"] = randn(n_out, n_in, std=1 / math.sqrt(n_in))
    w[name + ".bias"] = randn(n_out, std=0.1)


def norm_weights(w, name, n):
    w[name + ".weight"] = (1 + randn(n, std=0.1)).to(torch.float32)
    w[name + ".bias"] = randn(n, std=0.1)


def lin(w, name, x):
    return x @ w[name + ".weight"].to(D).T + w[name + ".bias"].to(D)


def ln(w, name, x, eps):
    return F.layer_norm(x, (x.shape[-1],), w[name + ".weight"].to(D), w[name + ".bias"].to(D), eps)


def attention(q, k, v, mask, heads, bias=None):
    b, t, c = q.shape
    d = c // heads
    q, k, v = (x.view(b, t, heads, d).transpose(1, 2) for x in (q, k, v))
    scores = q @ k.transpose(-1, -2) / math.sqrt(d)
    if bias is not None:
        scores = scores + bias
    scores = scores + (1.0 - mask[:, None, None, :].to(D)) * torch.finfo(D).min
    return (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, t, c)


def gelu(x):
    return F.gelu(x)


BERT_NAMES = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
              "o": "attention.output.dense", "ln1": "attention.output.LayerNorm", "i": "intermediate.dense",
              "out": "output.dense", "ln2": "output.LayerNorm"}


def layer_weights(w, p, names):  # one post-norm layer's weights under the family's module names
    for n in ("q", "k", "v", "o"):
        linear_weights(w, p + names[n], HIDDEN, HIDDEN)
    norm_weights(w, p + names["ln1"], HIDDEN)
    linear_weights(w, p + names["i"], HIDDEN, INTER)
    linear_weights(w, p + names["out"], INTER, HIDDEN)
    norm_weights(w, p + names["ln2"], HIDDEN)


def bert_layer(w, p, x, mask, heads, eps, bias=None, names=None):
    n = names or BERT_NAMES
    ctx = attention(lin(w, p + n["q"], x), lin(w, p + n["k"], x), lin(w, p + n["v"], x), mask, heads, bias)
    a = ln(w, p + n["ln1"], lin(w, p + n["o"], ctx) + x, eps)
    h = gelu(lin(w, p + n["i"], a))
    return ln(w, p + n["ln2"], lin(w, p + n["out"], h) + a, eps)


def positions_after_padding(ids, pad):
    mask = ids.ne(pad).int()
    return (torch.cumsum(mask, dim=1).type_as(mask) * mask).long() + pad


HIDDEN, LAYERS, HEADS, INTER = 32, 2, 4, 37


def xlmr():
    cfg = {"architectures": ["XLMRobertaModel"], "model_type": "xlm-roberta", "vocab_size": VOCAB, "hidden_size": HIDDEN,
           "num_hidden_layers": LAYERS, "num_attention_heads": HEADS, "intermediate_size": INTER, "hidden_act": "gelu",
           "max_position_embeddings": 42, "type_vocab_size": 1, "layer_norm_eps": 1e-5, "pad_token_id": 1,
           "bos_token_id": 0, "eos_token_id": 2, "position_embedding_type": "absolute"}
    w = {"embeddings.word_embeddings.weight": randn(VOCAB, HIDDEN), "embeddings.position_embeddings.weight": randn(42, HIDDEN),
         "embeddings.token_type_embeddings.weight": randn(1, HIDDEN)}
    norm_weights(w, "embeddings.LayerNorm", HIDDEN)
    for i in range(LAYERS):
        layer_weights(w, f"encoder.layer.{i}.", BERT_NAMES)
    linear_weights(w, "pooler.dense", HIDDEN, HIDDEN)

    def forward(ids, mask):
        pos = positions_after_padding(ids, 1)
        x = w["embeddings.word_embeddings.weight"].to(D)[ids] + w["embeddings.token_type_embeddings.weight"].to(D)[0] + \
            w["embeddings.position_embeddings.weight"].to(D)[pos]
        x = ln(w, "embeddings.LayerNorm", x, 1e-5)
        for i in range(LAYERS):
            x = bert_layer(w, f"encoder.layer.{i}.", x, mask, HEADS, 1e-5)
        return x, torch.tanh(lin(w, "pooler.dense", x[:, 0]))
    # saved as XLMRobertaForMaskedLM keeps it: under "roberta." (with the LM head, which mmx ignores)
    saved = {"roberta." + k: v for k, v in w.items()}
    saved["lm_head.bias"] = randn(VOCAB)
    return cfg, saved, forward


def mpnet_bucket(relative_position, num_buckets=32, max_distance=128):  # modeling_mpnet.py, as written there
    ret = 0
    n = -relative_position
    num_buckets //= 2
    ret += (n < 0).to(torch.long) * num_buckets
    n = torch.abs(n)
    max_exact = num_buckets // 2
    is_small = n < max_exact
    val_if_large = max_exact + (torch.log(n.float() / max_exact) / math.log(max_distance / max_exact)
                                * (num_buckets - max_exact)).to(torch.long)
    val_if_large = torch.min(val_if_large, torch.full_like(val_if_large, num_buckets - 1))
    ret += torch.where(is_small, n, val_if_large)
    return ret


def mpnet():
    cfg = {"architectures": ["MPNetModel"], "model_type": "mpnet", "vocab_size": VOCAB, "hidden_size": HIDDEN,
           "num_hidden_layers": LAYERS, "num_attention_heads": HEADS, "intermediate_size": INTER, "hidden_act": "gelu",
           "max_position_embeddings": 42, "layer_norm_eps": 1e-5, "relative_attention_num_buckets": 32,
           "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2}
    w = {"embeddings.word_embeddings.weight": randn(VOCAB, HIDDEN), "embeddings.position_embeddings.weight": randn(42, HIDDEN),
         "encoder.relative_attention_bias.weight": randn(32, HEADS, std=1.0)}
    norm_weights(w, "embeddings.LayerNorm", HIDDEN)
    names = {"q": "attention.attn.q", "k": "attention.attn.k", "v": "attention.attn.v", "o": "attention.attn.o",
             "ln1": "attention.LayerNorm", "i": "intermediate.dense", "out": "output.dense", "ln2": "output.LayerNorm"}
    for i in range(LAYERS):
        layer_weights(w, f"encoder.layer.{i}.", names)
    linear_weights(w, "pooler.dense", HIDDEN, HIDDEN)

    def forward(ids, mask):
        pos = positions_after_padding(ids, 1)
        x = w["embeddings.word_embeddings.weight"].to(D)[ids] + w["embeddings.position_embeddings.weight"].to(D)[pos]
        x = ln(w, "embeddings.LayerNorm", x, 1e-5)
        t = ids.shape[1]
        rel = torch.arange(t)[None, :] - torch.arange(t)[:, None]  # memory − context
        bias = w["encoder.relative_attention_bias.weight"].to(D)[mpnet_bucket(rel)].permute(2, 0, 1).unsqueeze(0)
        for i in range(LAYERS):
            x = bert_layer(w, f"encoder.layer.{i}.", x, mask, HEADS, 1e-5, bias, names)
        return x, torch.tanh(lin(w, "pooler.dense", x[:, 0]))
    return cfg, w, forward


def distilbert():
    cfg = {"architectures": ["DistilBertModel"], "model_type": "distilbert", "vocab_size": VOCAB, "dim": HIDDEN,
           "n_layers": LAYERS, "n_heads": HEADS, "hidden_dim": INTER, "activation": "gelu", "max_position_embeddings": 40,
           "sinusoidal_pos_embds": False, "pad_token_id": 1}
    w = {"embeddings.word_embeddings.weight": randn(VOCAB, HIDDEN), "embeddings.position_embeddings.weight": randn(40, HIDDEN)}
    norm_weights(w, "embeddings.LayerNorm", HIDDEN)
    names = {"q": "attention.q_lin", "k": "attention.k_lin", "v": "attention.v_lin", "o": "attention.out_lin",
             "ln1": "sa_layer_norm", "i": "ffn.lin1", "out": "ffn.lin2", "ln2": "output_layer_norm"}
    for i in range(LAYERS):
        layer_weights(w, f"transformer.layer.{i}.", names)

    def forward(ids, mask):
        t = ids.shape[1]
        x = w["embeddings.word_embeddings.weight"].to(D)[ids] + w["embeddings.position_embeddings.weight"].to(D)[:t]
        x = ln(w, "embeddings.LayerNorm", x, 1e-12)
        for i in range(LAYERS):
            x = bert_layer(w, f"transformer.layer.{i}.", x, mask, HEADS, 1e-12, None, names)
        return x, None
    return cfg, w, forward


def lab_batch():
    rows = [[0] + [3 if i == 0 else i + 1 for i in sp.encode(t)] + [2] for t in LAB]
    n = max(map(len, rows))
    ids = torch.tensor([r + [1] * (n - len(r)) for r in rows])
    mask = torch.tensor([[1] * len(r) + [0] * (n - len(r)) for r in rows])
    return ids, mask


def id_batch():
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(4, VOCAB - 1, (3, 24), generator=g)
    ids[:, 0], mask = 0, torch.ones(3, 24, dtype=torch.long)
    for r, n in enumerate((24, 17, 9)):
        ids[r, n - 1] = 2
        ids[r, n:], mask[r, n:] = 1, 0
    ids[0, 5] = 1  # a pad id among the tokens: RoBERTa and MPNet give it position padding_idx
    return ids, mask


ST = {
    "xlmr-tiny": ("mean", True, "cosine", {"query": "query: ", "passage": "passage: "}),
    "mpnet-tiny": ("mean", True, "cosine", {}),
    "distilbert-tiny": ("cls", False, "dot", {}),
}
for name, make in (("xlmr-tiny", xlmr), ("mpnet-tiny", mpnet), ("distilbert-tiny", distilbert)):
    cfg, weights, forward = make()
    folder = DATA / "models" / name
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "1_Pooling").mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    write_safetensors(folder / "model.safetensors", weights)
    for f in ("tokenizer.json", "tokenizer_config.json"):  # links, as the st-bert-tiny folders link theirs
        (folder / f).symlink_to(Path("../../tokenizers/unigram-xlmr") / f)
    pooling, normalize, similarity, prompts = ST[name]
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
    (folder / "modules.json").write_text(json.dumps(modules, indent=2) + "\n")
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 32, "do_lower_case": False}, indent=2) + "\n")
    modes = {m: m == pooling for m in ("cls", "mean_tokens", "max_tokens", "mean_sqrt_len_tokens", "weightedmean_tokens", "lasttoken")}
    modes["mean_tokens"] = pooling == "mean"
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": HIDDEN, "pooling_mode_cls_token": modes["cls"], "pooling_mode_mean_tokens": modes["mean_tokens"],
         "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False, "pooling_mode_weightedmean_tokens": False,
         "pooling_mode_lasttoken": False, "include_prompt": True}, indent=2) + "\n")
    (folder / "config_sentence_transformers.json").write_text(json.dumps(
        {"prompts": prompts, "default_prompt_name": None, "similarity_fn_name": similarity}, indent=2) + "\n")

    ids, mask = id_batch()
    hidden, pooled = forward(ids, mask)
    expected = {"input_ids": ids, "attention_mask": mask, "last_hidden_state": hidden.to(torch.float32)}
    if pooled is not None:
        expected["pooler_output"] = pooled.to(torch.float32)
    lab_ids, lab_mask = lab_batch()
    h, _ = forward(lab_ids, lab_mask)
    if pooling == "cls":
        e = h[:, 0]
    else:
        m = lab_mask[:, :, None].to(D)
        e = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
    if normalize:
        e = F.normalize(e, p=2, dim=1)
    expected["st_embeddings"] = e.to(torch.float32)
    expected["lab_input_ids"] = lab_ids
    if name == "mpnet-tiny":
        expected["buckets"] = mpnet_bucket(torch.arange(-300, 301))
    write_safetensors(DATA / "expected" / f"{name}.safetensors", expected)
    print(name, {k: list(v.shape) for k, v in expected.items()})
