#!/usr/bin/env python3
"""PyTorch baseline on a CUDA GPU for the workloads of `mmx bench --device cuda` (never built, never required;
scripts/gpu-check.sh runs it beside mmx on the lent GPU machine).

transformers' BertModel, ViTModel and CLIPModel are built from the same real configs (tests/data/real-configs)
with random weights, in the given dtype on the GPU, with transformers' default attention (SDPA); SDXL's UNet and
VAE are diffusers' own classes (diffusers' src carried in: --diffusers DIR), and `sdxl-1024x30` is
StableDiffusionXLPipeline.__call__'s work written out: both text encoders on the prompt (the negative prompt is
zeros: force_zeros_for_empty_prompt), 30 Euler steps of the UNet on the CFG batch of 2 with guidance 5, and the
VAE decode upcast to float32 (force_upcast), as diffusers runs it.

    python3 tools/bench_torch_gpu.py --dtype f16 --runs 5 --json out.json bert-1x128 vit-256 sdxl-unet-1024
Workloads: bert-NxT, vit-N, clip-image-N, clip-text-N, sdxl-unet-S, sdxl-vae-S, sdxl-SxSTEPS.
"""
import argparse, json, pathlib, statistics, sys, time

ROOT = pathlib.Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "tests/data/real-configs"
LAB_TEXTS = ["Cat with paint", "rock statue", "frogs on leaf", "jellyfish",
             "Cats don't usually", "like water", "but this one likes paint", "quite a lot"]


def load_config(path):
    return {k: v for k, v in json.loads(path.read_text()).items() if not k.startswith("_")}


def timed(torch, run, runs):
    run()  # warm-up: cuBLAS/cuDNN plans, allocator
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    ms = []
    for _ in range(runs):
        t0 = time.perf_counter()
        run()
        torch.cuda.synchronize()
        ms.append((time.perf_counter() - t0) * 1e3)
    return {"median_ms": statistics.median(ms), "min_ms": min(ms), "runs": runs,
            "peak_device_mb": torch.cuda.max_memory_reserved() / 2**20}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("workloads", nargs="+")
    ap.add_argument("--dtype", default="f16", choices=["f16", "bf16", "f32"])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--diffusers", help="folder holding the diffusers package (for sdxl-*)")
    ap.add_argument("--json", help="write the results here too")
    args = ap.parse_args()
    import torch
    dtype = {"f16": torch.float16, "bf16": torch.bfloat16, "f32": torch.float32}[args.dtype]
    torch.manual_seed(0)
    torch.backends.cuda.matmul.allow_tf32 = False  # f32 means f32, as in mmx
    results = []
    for name in args.workloads:
        with torch.inference_mode():
            r = run_workload(torch, name, dtype, args)
        r.update(workload=name, device=f"cuda {args.dtype} ({torch.cuda.get_device_name()})", framework="torch " + torch.__version__)
        print(f"{name:20s} median {r['median_ms']:9.2f} ms  min {r['min_ms']:9.2f} ms  gpu memory {r['peak_device_mb']:8.1f} MiB"
              + (f"  {r['items_per_s']:.1f} items/s" if r.get("items") else ""), flush=True)
        results.append(r)
        torch.cuda.empty_cache()
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(results, indent=2))


def run_workload(torch, name, dtype, args):
    dev = "cuda"
    parts = name.split("-")
    if parts[0] == "bert":
        from transformers import BertConfig, BertModel
        n, t = (int(v) for v in parts[1].split("x"))
        model = BertModel(BertConfig(**load_config(CONFIGS / "bert-base-uncased/config.json"))).to(dev, dtype).eval()
        ids = torch.randint(1000, 21000, (n, t), device=dev)
        mask = torch.ones_like(ids)
        r = timed(torch, lambda: model(input_ids=ids, attention_mask=mask), args.runs)
        return items(r, n)
    if parts[0] == "vit":
        from transformers import ViTConfig, ViTModel
        n = int(parts[1])
        model = ViTModel(ViTConfig(**load_config(CONFIGS / "vit-base-patch16-224/config.json"))).to(dev, dtype).eval()
        pixels = torch.randn(n, 3, 224, 224, device=dev, dtype=dtype)
        return items(timed(torch, lambda: model(pixel_values=pixels), args.runs), n)
    if parts[0] == "clip":
        from transformers import CLIPConfig, CLIPModel
        n = int(parts[2])
        model = CLIPModel(CLIPConfig(**load_config(CONFIGS / "clip-vit-base-patch32/config.json"))).to(dev, dtype).eval()
        if parts[1] == "image":
            pixels = torch.randn(n, 3, 224, 224, device=dev, dtype=dtype)
            return items(timed(torch, lambda: model.get_image_features(pixel_values=pixels), args.runs), n)
        ids, mask = clip_tokens(n, dev)
        return items(timed(torch, lambda: model.get_text_features(input_ids=ids, attention_mask=mask), args.runs), n)
    if parts[0] == "sdxl":
        return run_sdxl(torch, parts, dtype, args)
    sys.exit(f"unknown workload {name}")


def items(r, n):
    r["items"] = n
    r["items_per_s"] = n / (r["median_ms"] / 1e3)
    return r


def clip_tokens(n, dev):
    import torch
    texts = [LAB_TEXTS[i % len(LAB_TEXTS)] for i in range(n)]
    try:
        from transformers import CLIPTokenizer
        tok = CLIPTokenizer(str(ROOT / "tests/data/tokenizers/clip/vocab.json"), str(ROOT / "tests/data/tokenizers/clip/merges.txt"))
        b = tok(texts, padding=True, return_tensors="pt")
        return b["input_ids"].to(dev), b["attention_mask"].to(dev)
    except Exception as e:  # the shapes are what is timed: the lab's texts are 7 tokens long
        print(f"(CLIP tokenizer unavailable: {e}; random ids of the lab's length)", file=sys.stderr)
        ids = torch.randint(400, 40000, (n, 7), device=dev)
        return ids, torch.ones_like(ids)


def run_sdxl(torch, parts, dtype, args):
    if args.diffusers:
        sys.path.insert(0, args.diffusers)
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel
    root = CONFIGS / "stable-diffusion-xl-base-1.0"
    dev = "cuda"
    what = parts[1]
    if what == "unet" or "x" in what:
        unet = UNet2DConditionModel(**load_config(root / "unet/config.json")).to(dev, dtype).eval()
    if what == "vae" or "x" in what:
        vae_config = load_config(root / "vae/config.json")
        # diffusers decodes in float32 when the VAE would be float16 and force_upcast is set
        vae_dtype = torch.float32 if dtype == torch.float16 and vae_config.get("force_upcast", True) else dtype
        vae = AutoencoderKL(**vae_config).to(dev, vae_dtype).eval()
    if what == "unet":
        size = int(parts[2])
        sample = torch.randn(2, 4, size // 8, size // 8, device=dev, dtype=dtype)
        context = torch.randn(2, 77, 2048, device=dev, dtype=dtype)
        added = {"text_embeds": torch.randn(2, 1280, device=dev, dtype=dtype),
                 "time_ids": torch.tensor([[size, size, 0, 0, size, size]] * 2, device=dev, dtype=dtype)}
        return timed(torch, lambda: unet(sample, 500, encoder_hidden_states=context, added_cond_kwargs=added), args.runs)
    if what == "vae":
        size = int(parts[2])
        z = torch.randn(1, 4, size // 8, size // 8, device=dev, dtype=vae.dtype)
        return timed(torch, lambda: vae.decode(z), args.runs)
    # sdxl-SIZExSTEPS: the whole __call__ after loading
    size, steps = (int(v) for v in what.split("x"))
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection
    te1 = CLIPTextModel(CLIPTextConfig(**load_config(root / "text_encoder/config.json"))).to(dev, dtype).eval()
    te2 = CLIPTextModelWithProjection(CLIPTextConfig(**load_config(root / "text_encoder_2/config.json"))).to(dev, dtype).eval()
    scheduler = EulerDiscreteScheduler.from_config(json.loads((root / "scheduler/scheduler_config.json").read_text()))
    ids = torch.full((1, 77), 49407, device=dev)
    ids[0, 0] = 49406
    ids[0, 1:12] = torch.arange(1, 12, device=dev) * 37 + 320
    time_ids = torch.tensor([[size, size, 0, 0, size, size]] * 2, device=dev, dtype=dtype)
    gen = torch.Generator(dev).manual_seed(0)

    def call():
        o1 = te1(ids, output_hidden_states=True)
        o2 = te2(ids, output_hidden_states=True)
        prompt = torch.cat([o1.hidden_states[-2], o2.hidden_states[-2]], dim=-1)
        context = torch.cat([torch.zeros_like(prompt), prompt])
        pooled = torch.cat([torch.zeros_like(o2.text_embeds), o2.text_embeds])
        scheduler.set_timesteps(steps, device=dev)
        latents = torch.randn(1, 4, size // 8, size // 8, device=dev, dtype=dtype, generator=gen) * scheduler.init_noise_sigma
        for t in scheduler.timesteps:
            x = scheduler.scale_model_input(torch.cat([latents, latents]), t)
            noise = unet(x, t, encoder_hidden_states=context,
                         added_cond_kwargs={"text_embeds": pooled, "time_ids": time_ids}).sample
            uncond, cond = noise.chunk(2)
            latents = scheduler.step(uncond + 5.0 * (cond - uncond), t, latents).prev_sample
        return vae.decode(latents.to(vae.dtype) / vae.config.scaling_factor).sample

    return timed(torch, call, max(1, min(args.runs, 3)))


if __name__ == "__main__":
    main()
