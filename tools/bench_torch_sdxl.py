#!/usr/bin/python3
"""PyTorch baseline for `mmx bench sdxl-unet-512 sdxl-unet-1024 sdxl-vae-512 sdxl-vae-1024` (never built, never
required): diffusers 0.30.3's own UNet2DConditionModel and AutoencoderKL built from SDXL base 1.0's real configs
(tests/data/real-configs) with random weights, float32 on the CPU, as the pipeline runs them: one denoising step
is the UNet on the CFG batch of 2; the VAE decodes one latent.

    PYTHONPATH=/path/to/diffusers-0.30.3/src /usr/bin/python3 tools/bench_torch_sdxl.py --threads 2 --runs 3 unet-512
Use Debian's python3-torch with libopenblas0-pthread (its default reference BLAS is several times slower).
Workloads: unet-512, unet-1024, vae-512, vae-1024. Prints the median and min seconds and the peak RSS.
"""
import argparse
import json
import pathlib
import resource
import statistics
import time

from diffusers_shim import shim_missing_modules

CONFIGS = pathlib.Path(__file__).resolve().parent.parent / "tests/data/real-configs/stable-diffusion-xl-base-1.0"


def config(component):
    return {k: v for k, v in json.loads((CONFIGS / component / "config.json").read_text()).items() if not k.startswith("_")}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("workloads", nargs="+")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    shim_missing_modules()
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    for name in args.workloads:
        kind, size = name.split("-")
        size = int(size)
        with torch.no_grad():
            if kind == "unet":
                model = UNet2DConditionModel(**config("unet")).eval()
                sample = torch.randn(2, 4, size // 8, size // 8)
                context = torch.randn(2, 77, 2048)
                added = {"text_embeds": torch.randn(2, 1280),
                         "time_ids": torch.tensor([[size, size, 0, 0, size, size]] * 2, dtype=torch.float32)}
                run = lambda: model(sample, 500, encoder_hidden_states=context, added_cond_kwargs=added)
            else:
                model = AutoencoderKL(**config("vae")).eval()
                z = torch.randn(1, 4, size // 8, size // 8)
                run = lambda: model.decode(z)
            run()  # warm-up, as mmx bench does
            times = []
            for _ in range(args.runs):
                start = time.perf_counter()
                run()
                times.append(time.perf_counter() - start)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"torch {torch.__version__} {name}: median {statistics.median(times):.2f} s  min {min(times):.2f} s  "
              f"runs {args.runs}  threads {args.threads}  peak RSS {rss:.0f} MiB", flush=True)
        del model


if __name__ == "__main__":
    main()
