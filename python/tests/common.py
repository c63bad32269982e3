"""What the Python module's tests share: the fixture folder, the built mmx command, a safetensors reader."""
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np

SOURCE = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DATA = os.environ.get("MMX_TEST_DATA", os.path.join(SOURCE, "tests", "data"))
MMX = os.environ.get("MMX_BINARY", os.path.join(SOURCE, "build", "release", "mmx"))

LAB_TEXTS = ["Cat with paint", "rock statue", "frogs on leaf", "jellyfish",
             "Cats don't usually", "like water", "but this one likes paint", "quite a lot"]
PHOTOS = [os.path.join(DATA, "images", name) for name in ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg")]

# tests/README.md's bounds for the fixture models against transformers (f32).
F32_BOUND = 1e-5


def model(name):
    return os.path.join(DATA, "models", name)


def read_safetensors(path):
    """Every tensor of a .safetensors file as a numpy array (F32, F64, I64)."""
    with open(path, "rb") as f:
        blob = f.read()
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + n])
    kinds = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "F16": np.float16}
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        out[name] = np.frombuffer(blob[8 + n + begin:8 + n + end], dtype=kinds[info["dtype"]]).reshape(info["shape"])
    return out


def expected(name):
    return read_safetensors(os.path.join(DATA, "expected", name))


def run_mmx(*args):
    """The built mmx command; fails the test with its stderr when it fails."""
    r = subprocess.run([MMX, *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError(f"mmx {' '.join(args)} exited {r.returncode}:\n{r.stderr}")
    return r.stdout


def tempdir(test):
    d = tempfile.TemporaryDirectory(prefix="mmx-python-")
    test.addCleanup(d.cleanup)
    return d.name


def max_abs(a, b):
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


sys.dont_write_bytecode = True
