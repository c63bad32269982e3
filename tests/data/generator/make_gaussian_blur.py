#!/usr/bin/python3
"""Writes tests/data/images/blur/: Pillow 9.4's ImageFilter.GaussianBlur (Debian's python3-pil) of two inputs — the
inpainting mask images/mask_ellipse.png and a 61×47 crop of images/coffee.png — at radii 0.5, 1, 2.5, 4 and 33
(a radius wider than the image), saved as PNG: <input>_r<radius>.png.
Run: /usr/bin/python3 tests/data/generator/make_gaussian_blur.py"""
import pathlib

from PIL import Image, ImageFilter

HERE = pathlib.Path(__file__).resolve().parent.parent
OUT = HERE / "images" / "blur"
OUT.mkdir(exist_ok=True)
inputs = {"mask": Image.open(HERE / "images" / "mask_ellipse.png").convert("RGB"),
          "coffee": Image.open(HERE / "images" / "coffee.png").convert("RGB").crop((200, 100, 261, 147))}
for name, image in inputs.items():
    image.save(OUT / f"{name}.png")
    for radius in (0.5, 1, 2.5, 4, 33):
        image.filter(ImageFilter.GaussianBlur(radius)).save(OUT / f"{name}_r{radius}.png")
print("wrote", OUT)
