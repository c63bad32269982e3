#!/usr/bin/env python3
"""PyTorch eager baseline for `mmx bench bert-lab bert-32x128 minilm-l6-32x128 bge-small-32x128 vit-4 vit-32
clip-text-8 clip-image-4 clip-image-32` (never built, never required).

transformers is not packaged in Debian 12, so this builds bert-base-uncased's architecture from the
same real config.json with torch.nn modules, op for op as transformers' eager BertModel runs them
(embeddings sum + LayerNorm; per layer q/k/v Linear, q·kᵀ/sqrt(d) + additive mask, softmax, ·v,
dense + residual + LayerNorm, GELU MLP + residual + LayerNorm; tanh pooler), random weights; ViT and
CLIP B/32 (text and vision towers with their projections, quick_gelu, causal + padding mask) likewise.

    python3 tools/bench_torch_bert.py --threads 2 --runs 5
    python3 tools/bench_torch_bert.py --threads 2 --runs 5 --autocast bf16   # as `mmx bench --dtype bf16`
(--autocast bf16: torch.autocast("cpu", dtype=torch.bfloat16), oneDNN's bf16/AMX kernels for Linear,
matmul and conv, f32 elsewhere, as PyTorch offers it.)
Use Debian's python3-torch with libopenblas0-pthread installed (its default reference BLAS is
several times slower).
"""
import argparse, json, math, os, statistics, time

import torch
from torch import nn


class Layer(nn.Module):
    def __init__(s, c):
        super().__init__()
        h, i = c["hidden_size"], c["intermediate_size"]
        s.heads = c["num_attention_heads"]
        s.q, s.k, s.v, s.o = (nn.Linear(h, h) for _ in range(4))
        s.ln1, s.ln2 = nn.LayerNorm(h, eps=c["layer_norm_eps"]), nn.LayerNorm(h, eps=c["layer_norm_eps"])
        s.up, s.down = nn.Linear(h, i), nn.Linear(i, h)

    def forward(s, x, mask):
        b, t, h = x.shape
        d = h // s.heads
        split = lambda y: y.view(b, t, s.heads, d).permute(0, 2, 1, 3)
        q, k, v = split(s.q(x)), split(s.k(x)), split(s.v(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(d) + mask
        ctx = torch.matmul(scores.softmax(-1), v).permute(0, 2, 1, 3).reshape(b, t, h)
        a = s.ln1(s.o(ctx) + x)
        return s.ln2(s.down(nn.functional.gelu(s.up(a))) + a)


class VitLayer(nn.Module):  # pre-norm, as transformers' ViTLayer
    def __init__(s, c):
        super().__init__()
        s.inner = Layer(c)

    def forward(s, x):
        L = s.inner
        b, t, h = x.shape
        d = h // L.heads
        split = lambda y: y.view(b, t, L.heads, d).permute(0, 2, 1, 3)
        n = L.ln1(x)
        q, k, v = split(L.q(n)), split(L.k(n)), split(L.v(n))
        ctx = torch.matmul((torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(d)).softmax(-1), v)
        a = L.o(ctx.permute(0, 2, 1, 3).reshape(b, t, h)) + x
        return L.down(nn.functional.gelu(L.up(L.ln2(a)))) + a


class Vit(nn.Module):
    def __init__(s, c):
        super().__init__()
        h, p = c["hidden_size"], c["patch_size"]
        s.patch = nn.Conv2d(c["num_channels"], h, p, stride=p)
        n = (c["image_size"] // p) ** 2
        s.cls = nn.Parameter(torch.zeros(1, 1, h))
        s.pos = nn.Parameter(torch.zeros(1, n + 1, h))
        s.layers = nn.ModuleList(VitLayer(c) for _ in range(c["num_hidden_layers"]))
        s.ln = nn.LayerNorm(h, eps=c["layer_norm_eps"])
        s.pool = nn.Linear(h, h)

    def forward(s, pixel_values):
        x = s.patch(pixel_values).flatten(2).transpose(1, 2)
        x = torch.cat([s.cls.expand(x.shape[0], -1, -1), x], 1) + s.pos
        for layer in s.layers:
            x = layer(x)
        x = s.ln(x)
        return x, torch.tanh(s.pool(x[:, 0]))


class Bert(nn.Module):
    def __init__(s, c):
        super().__init__()
        h = c["hidden_size"]
        s.word = nn.Embedding(c["vocab_size"], h)
        s.pos = nn.Embedding(c["max_position_embeddings"], h)
        s.token_type = nn.Embedding(c["type_vocab_size"], h)
        s.ln = nn.LayerNorm(h, eps=c["layer_norm_eps"])
        s.layers = nn.ModuleList(Layer(c) for _ in range(c["num_hidden_layers"]))
        s.pool = nn.Linear(h, h)

    def forward(s, ids, attention_mask):
        t = ids.shape[1]
        x = s.ln(s.word(ids) + s.token_type(torch.zeros_like(ids)) + s.pos(torch.arange(t)))
        mask = (1.0 - attention_mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
        for layer in s.layers:
            x = layer(x, mask)
        return x, torch.tanh(s.pool(x[:, 0]))


class ClipLayer(nn.Module):  # transformers' CLIPEncoderLayer: pre-norm, q scaled before q·kᵀ, quick_gelu
    def __init__(s, h, i, heads, eps):
        super().__init__()
        s.heads = heads
        s.q, s.k, s.v, s.o = (nn.Linear(h, h) for _ in range(4))
        s.ln1, s.ln2 = nn.LayerNorm(h, eps=eps), nn.LayerNorm(h, eps=eps)
        s.fc1, s.fc2 = nn.Linear(h, i), nn.Linear(i, h)

    def forward(s, x, mask):
        b, t, h = x.shape
        d = h // s.heads
        split = lambda y: y.view(b, t, s.heads, d).permute(0, 2, 1, 3)
        n = s.ln1(x)
        q, k, v = split(s.q(n) * d ** -0.5), split(s.k(n)), split(s.v(n))
        scores = torch.matmul(q, k.transpose(-1, -2))
        if mask is not None:
            scores = scores + mask
        x = x + s.o(torch.matmul(scores.softmax(-1), v).permute(0, 2, 1, 3).reshape(b, t, h))
        m = s.fc1(s.ln2(x))
        return x + s.fc2(m * torch.sigmoid(1.702 * m))


class ClipText(nn.Module):
    def __init__(s, c, projection_dim):
        super().__init__()
        h = c["hidden_size"]
        s.tok, s.pos = nn.Embedding(c["vocab_size"], h), nn.Embedding(c["max_position_embeddings"], h)
        s.layers = nn.ModuleList(ClipLayer(h, c["intermediate_size"], c["num_attention_heads"], c["layer_norm_eps"])
                                 for _ in range(c["num_hidden_layers"]))
        s.ln = nn.LayerNorm(h, eps=c["layer_norm_eps"])
        s.proj = nn.Linear(h, projection_dim, bias=False)

    def forward(s, ids, attention_mask):
        b, t = ids.shape
        x = s.tok(ids) + s.pos(torch.arange(t))
        causal = torch.full((t, t), torch.finfo(torch.float32).min).triu(1)
        mask = causal[None, None] + (1.0 - attention_mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
        for layer in s.layers:
            x = layer(x, mask)
        x = s.ln(x)
        return s.proj(x[torch.arange(b), ids.argmax(-1)])


class ClipVision(nn.Module):
    def __init__(s, c, projection_dim):
        super().__init__()
        h, p = c["hidden_size"], c["patch_size"]
        s.patch = nn.Conv2d(3, h, p, stride=p, bias=False)
        s.cls = nn.Parameter(torch.zeros(h))
        s.pos = nn.Parameter(torch.zeros((c["image_size"] // p) ** 2 + 1, h))
        s.pre, s.post = nn.LayerNorm(h, eps=c["layer_norm_eps"]), nn.LayerNorm(h, eps=c["layer_norm_eps"])
        s.layers = nn.ModuleList(ClipLayer(h, c["intermediate_size"], c["num_attention_heads"], c["layer_norm_eps"])
                                 for _ in range(c["num_hidden_layers"]))
        s.proj = nn.Linear(h, projection_dim, bias=False)

    def forward(s, pixel_values):
        x = s.patch(pixel_values).flatten(2).transpose(1, 2)
        x = s.pre(torch.cat([s.cls.expand(x.shape[0], 1, -1), x], 1) + s.pos)
        for layer in s.layers:
            x = layer(x, None)
        return s.proj(s.post(x[:, 0]))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "tests", "data"))
    p.add_argument("--autocast", choices=["none", "bf16"], default="none",
                   help="torch.autocast('cpu', dtype=torch.bfloat16) around every forward")
    p.add_argument("workloads", nargs="*", help="names to run (default: all)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    c = json.load(open(os.path.join(a.data, "real-configs/bert-base-uncased/config.json")))
    cases = json.load(open(os.path.join(a.data, "tokenizers/bert_cases.json")))["seed_batch"]
    model = Bert(c).eval()
    ids32 = torch.randint(1000, 21000, (32, 128))
    workloads = {
        "bert-lab": (torch.tensor(cases["input_ids"]), torch.tensor(cases["attention_mask"])),
        "bert-32x128": (ids32, torch.ones_like(ids32)),
    }
    vc = json.load(open(os.path.join(a.data, "real-configs/vit-base-patch16-224/config.json")))
    vit = Vit(vc).eval()
    runs = {name: (lambda ids=ids, mask=mask: model(ids, mask), list(ids.shape)) for name, (ids, mask) in workloads.items()}
    # The sentence-transformers models' BERTs (their real configs), as `mmx bench minilm-l6-32x128 bge-small-32x128`.
    for name, folder in (("minilm-l6-32x128", "all-MiniLM-L6-v2"), ("bge-small-32x128", "bge-small-en-v1.5")):
        small = Bert(json.load(open(os.path.join(a.data, "real-configs", folder, "config.json")))).eval()
        runs[name] = (lambda small=small: small(ids32, torch.ones_like(ids32)), list(ids32.shape))
    for batch in (4, 32):
        pixels = torch.randn(batch, 3, vc["image_size"], vc["image_size"])
        runs[f"vit-{batch}"] = (lambda pixels=pixels: vit(pixels), list(pixels.shape))
    cc = json.load(open(os.path.join(a.data, "real-configs/clip-vit-base-patch32/config.json")))
    clip_cases = json.load(open(os.path.join(a.data, "tokenizers/clip_cases.json")))["seed_batch"]
    clip_text = ClipText(cc["text_config"], cc["projection_dim"]).eval()
    clip_vision = ClipVision(cc["vision_config"], cc["projection_dim"]).eval()
    text_ids, text_mask = torch.tensor(clip_cases["input_ids"]), torch.tensor(clip_cases["attention_mask"])
    runs["clip-text-8"] = (lambda: clip_text(text_ids, text_mask), list(text_ids.shape))
    for batch in (4, 32):
        pixels = torch.randn(batch, 3, 224, 224)
        runs[f"clip-image-{batch}"] = (lambda pixels=pixels: clip_vision(pixels), list(pixels.shape))
    only = set(a.workloads)
    runs = {name: run for name, run in runs.items() if not only or name in only}
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.autocast == "bf16")
    with torch.inference_mode(), autocast:
        for name, (run, shape) in runs.items():
            run()
            ms = []
            for _ in range(a.runs):
                t0 = time.perf_counter()
                run()
                ms.append((time.perf_counter() - t0) * 1e3)
            print(f"torch {torch.__version__} {'autocast-bf16 ' if a.autocast == 'bf16' else ''}{name:12s} median {statistics.median(ms):9.2f} ms  "
                  f"min {min(ms):9.2f} ms  threads {a.threads}  runs {a.runs}  input {shape}")


if __name__ == "__main__":
    main()
