#!/usr/bin/python3
"""Writes the PyTorch .bin fixtures for the restricted unpickler's tests, with Debian's python3-torch (1.13):

    /usr/bin/python3 tools/make_torch_bin_fixtures.py

- tests/data/models/bert-tiny-bin/: bert-tiny's folder with its weights saved by torch.save as
  pytorch_model.bin (the state dict transformers would write: an OrderedDict with _metadata, plus the
  position_ids buffer older checkpoints carry) instead of model.safetensors.
- tests/data/torch/views.bin: tensors of every storage type a state dict uses (F32, F16, BF16, F64, I64),
  including views that share a storage (an offset row, a transpose), and views.safetensors with the same
  values as contiguous tensors, written here from torch's own values.
- tests/data/torch/evil.bin: torch.save of an object whose pickle calls os.system; it must be refused.
"""
import collections
import json
import os
import pathlib
import shutil
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from diffusers_shim import read_safetensors, write_safetensors  # noqa: E402

DATA = pathlib.Path(__file__).resolve().parent.parent / "tests" / "data"


def main():
    src = DATA / "models" / "bert-tiny"
    dst = DATA / "models" / "bert-tiny-bin"
    dst.mkdir(exist_ok=True)
    for f in src.iterdir():
        if f.name != "model.safetensors":
            shutil.copy(f, dst / f.name)
    state = collections.OrderedDict()
    for name, array in read_safetensors(src / "model.safetensors").items():
        state[name] = torch.from_numpy(array.copy())
    state["embeddings.position_ids"] = torch.arange(512).expand((1, -1))  # a buffer old BERT .bin files hold
    state._metadata = collections.OrderedDict({"": {"version": 1}})
    torch.save(state, dst / "pytorch_model.bin")

    out = DATA / "torch"
    out.mkdir(exist_ok=True)
    g = torch.Generator().manual_seed(3)
    base = torch.randn(4, 6, generator=g)
    views = collections.OrderedDict()
    views["f32"] = base
    views["row_view"] = base[2]                 # storage offset 12
    views["transposed"] = base.t()              # strides (1, 6)
    views["f16"] = torch.randn(3, 5, generator=g).half()
    views["bf16"] = torch.randn(7, generator=g).bfloat16()
    views["f64"] = torch.randn(2, 2, generator=g).double()
    views["i64"] = torch.arange(10).reshape(2, 5)
    views["scalar"] = torch.tensor(2.5)
    torch.save(views, out / "views.bin")
    expected = {k: (v.float() if v.dtype in (torch.float16, torch.bfloat16, torch.float64, torch.int64) else v).contiguous().numpy()
                for k, v in views.items()}
    write_safetensors(out / "views.safetensors", expected)

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo this pickle ran code",))

    torch.save(collections.OrderedDict(weight=torch.zeros(2), hook=Evil()), out / "evil.bin")
    print("wrote", dst / "pytorch_model.bin", out / "views.bin", out / "evil.bin")


if __name__ == "__main__":
    main()
