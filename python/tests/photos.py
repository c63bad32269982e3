"""Distinct small photos for the distributed tests: random 24-bit BMP files, written with numpy alone."""
import os
import struct

import numpy as np


def write_bmp(path, rgb):
    h, w, _ = rgb.shape
    row = (w * 3 + 3) & ~3
    pixels = np.zeros((h, row), np.uint8)
    pixels[:, :w * 3] = rgb[::-1, :, ::-1].reshape(h, w * 3)  # bottom-up rows, BGR
    header = struct.pack("<2sIHHI", b"BM", 54 + pixels.size, 0, 0, 54)
    info = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, pixels.size, 2835, 2835, 0, 0)
    with open(path, "wb") as f:
        f.write(header + info + pixels.tobytes())


def make_photos(folder, count, seed=0):
    """`count` images of 24×24 to 72×72 pixels (so the files differ in size), smooth enough to resize sensibly."""
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    paths = []
    for i in range(count):
        side = int(rng.integers(24, 73))
        base = rng.integers(0, 256, (6, 6, 3)).astype(np.float32)
        rgb = np.kron(base, np.ones((side // 6 + 1, side // 6 + 1, 1)))[:side, :side] + rng.normal(0, 8, (side, side, 3))
        path = os.path.join(folder, f"photo-{i:05d}.bmp")
        write_bmp(path, np.clip(rgb, 0, 255).astype(np.uint8))
        paths.append(path)
    return paths
