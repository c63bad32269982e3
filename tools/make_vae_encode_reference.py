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
import importlib.abc
import importlib.machinery
import importlib.util
import json
import pathlib
import struct
import sys
import types

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"


def shim_missing_modules():
    """Stands in for diffusers' optional hub/IO dependencies when they are absent (attributes are placeholders)."""
    roots = [m for m in ("huggingface_hub", "safetensors", "regex", "requests", "filelock", "importlib_metadata", "tqdm")
             if importlib.util.find_spec(m) is None]

    class Placeholder(types.ModuleType):
        def __getattr__(self, name):
            if name.startswith("__"):
                raise AttributeError(name)
            if name.isupper():  # constants such as HF_HOME
                return "/nonexistent"
            return type(name, (), {"__init__": lambda self, *a, **k: None, "__call__": lambda self, *a, **k: None})

    class Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
        def find_spec(self, fullname, path, target=None):
            if fullname.split(".")[0] in roots:
                return importlib.machinery.ModuleSpec(fullname, self, is_package=True)

        def create_module(self, spec):
            module = Placeholder(spec.name)
            module.__path__ = []
            return module

        def exec_module(self, module):
            pass

    sys.meta_path.insert(0, Finder())
    check = types.ModuleType("diffusers.dependency_versions_check")
    check.dep_version_check = lambda *a, **k: None
    sys.modules["diffusers.dependency_versions_check"] = check


def read_safetensors(path):
    raw = pathlib.Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    dtypes = {"F32": np.float32, "F16": np.float16}
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        out[name] = np.frombuffer(raw[8 + n + a:8 + n + b], dtype=dtypes[info["dtype"]]).reshape(info["shape"])
    return out


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        data = np.ascontiguousarray(t, dtype=np.float32).tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    pathlib.Path(path).write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


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
