"""Lets diffusers' model classes be imported with only torch and numpy installed (Debian 12 packages neither
diffusers nor its hub dependencies): placeholders stand in for the missing hub/IO modules, which building a model
from a config never calls. Plus minimal safetensors reading and writing in numpy. Used by the tools beside it.
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
    dtypes = {"F32": np.float32, "F16": np.float16, "I64": np.int64}
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


def load_model(cls, folder, weights="diffusion_pytorch_model.safetensors"):
    """A diffusers model class built from folder/config.json with its float32 weights, in eval mode."""
    import torch
    folder = pathlib.Path(folder)
    config = {k: v for k, v in json.loads((folder / "config.json").read_text()).items() if not k.startswith("_")}
    model = cls(**config)
    model.load_state_dict({k: torch.from_numpy(v.astype(np.float32)) for k, v in read_safetensors(folder / weights).items()})
    return model.eval()
