#!/usr/bin/python3
"""Writes tests/data/expected/sdxl-tiny-vae-encode.safetensors: diffusers' own AutoencoderKL.encode on the
sdxl-tiny VAE (its fp32 weights), for the encoder's golden test. The fixture generator did not store an encode.

Run with Debian's python3-torch and diffusers 0.30.3's source (the version that saved the fixtures), e.g. from a
checkout of huggingface/diffusers at tag v0.30.3:
    PYTHONPATH=/path/to/diffusers/src /usr/bin/python3 tools/make_vae_encode_reference.py
diffusers' hub helpers (huggingface_hub, requests, ...) are not needed to build a model from a config; where they
are not installed an import shim stands in for them, so only torch and numpy are required.

Keys: vae_encode_in [2,3,64,48] (two crops of real photos scaled to [-1, 1], as VaeImageProcessor.preprocess
gives), vae_encode_mean / vae_encode_logvar / vae_encode_std (latent_dist.mean, .logvar, .std),
vae_encode_noise (torch.randn of that shape, generator manual_seed(0)) and vae_encode_sample
(latent_dist.sample(generator=torch.Generator().manual_seed(0))); fp16_weights_vae_encode_mean: the mean with the
variant's diffusion_pytorch_model.fp16.safetensors loaded in float32 (torch_dtype=float32, variant="fp16").
"""
import json
import pathlib

import numpy as np

from diffusers_shim import read_safetensors, shim_missing_modules, write_safetensors

ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"


def png_pixels(path):
    import matplotlib.image  # decodes PNG to float [0, 1] exactly (8-bit / 255)
    return matplotlib.image.imread(str(path))[:, :, :3]


def main():
    shim_missing_modules()
    import torch
    from diffusers import AutoencoderKL

    folder = DATA / "models" / "sdxl-tiny" / "vae"
    config = {k: v for k, v in json.loads((folder / "config.json").read_text()).items() if not k.startswith("_")}
    def load(file):
        vae = AutoencoderKL(**config)
        state = {k: torch.from_numpy(v.astype(np.float32)) for k, v in read_safetensors(folder / file).items()}
        vae.load_state_dict(state, strict=True)
        return vae.eval()

    vae = load("diffusion_pytorch_model.safetensors")
    vae16 = load("diffusion_pytorch_model.fp16.safetensors")

    crops = [png_pixels(DATA / "images" / "astronaut.png")[100:164, 200:248],
             png_pixels(DATA / "images" / "coffee.png")[40:104, 300:348]]
    x = torch.from_numpy(np.stack(crops).transpose(0, 3, 1, 2).copy()).float() * 2.0 - 1.0
    with torch.no_grad():
        dist = vae.encode(x).latent_dist
        noise = torch.randn(dist.mean.shape, generator=torch.Generator().manual_seed(0))
        sample = dist.sample(generator=torch.Generator().manual_seed(0))
        mean16 = vae16.encode(x).latent_dist.mean
    out = {"vae_encode_in": x.numpy(), "vae_encode_mean": dist.mean.numpy(), "vae_encode_logvar": dist.logvar.numpy(),
           "vae_encode_std": dist.std.numpy(), "vae_encode_noise": noise.numpy(), "vae_encode_sample": sample.numpy(),
           "fp16_weights_vae_encode_mean": mean16.numpy()}
    target = DATA / "expected" / "sdxl-tiny-vae-encode.safetensors"
    write_safetensors(target, out)
    print(f"wrote {target} (torch {torch.__version__}); mean range {dist.mean.min():.4f}..{dist.mean.max():.4f}")


if __name__ == "__main__":
    main()
