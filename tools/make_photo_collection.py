#!/usr/bin/python3
"""A folder of N photo-like images for collection benchmarks: random crops (30–100 % of the side),
resizes (to 320–1024 px on the long side), flips and re-encodes (JPEG quality 70–95, some PNG and WebP)
of the repository's photos, as a phone's camera roll of a few subjects would look. Deterministic (seed).
Usage: tools/make_photo_collection.py OUT_DIR N [SEED]   (Debian's python3-pil)"""
import os
import random
import sys

from PIL import Image

out, count = sys.argv[1], int(sys.argv[2])
rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 0)
root = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "images")
sources = [Image.open(os.path.join(root, name)).convert("RGB")
           for name in ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "camera.png", "horse.png")]
for i in range(count):
    image = rng.choice(sources)
    w, h = image.size
    f = rng.uniform(0.3, 1.0)
    cw, ch = max(16, int(w * f)), max(16, int(h * f * rng.uniform(0.75, 1.33)))
    cw, ch = min(cw, w), min(ch, h)
    x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
    crop = image.crop((x, y, x + cw, y + ch))
    side = rng.randint(320, 1024)
    scale = side / max(cw, ch)
    crop = crop.resize((max(1, round(cw * scale)), max(1, round(ch * scale))), Image.BICUBIC)
    if rng.random() < 0.5:
        crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    folder = os.path.join(out, f"{i // 500:03d}")
    os.makedirs(folder, exist_ok=True)
    kind = rng.random()
    if kind < 0.8:
        crop.save(os.path.join(folder, f"photo_{i:06d}.jpg"), quality=rng.randint(70, 95))
    elif kind < 0.9:
        crop.save(os.path.join(folder, f"photo_{i:06d}.png"))
    else:
        crop.save(os.path.join(folder, f"photo_{i:06d}.webp"), quality=80)
print(count, "images in", out)
