#!/usr/bin/python3
"""Writes tests/data/images/formats/: the repository's photos re-encoded by Pillow (Debian's python3-pil
9.4) as WebP, GIF, TIFF and BMP (and PNG/WebP/TIFF with EXIF orientations), each with what Pillow decodes
from it: <file>.rgb.png = Image.open(file).convert("RGB") and <file>.upright.png =
ImageOps.exif_transpose(Image.open(file)).convert("RGB"). Run from the repository root."""
import io
import os
from PIL import Image, ImageOps

root = "tests/data/images"
out = os.path.join(root, "formats")
os.makedirs(out, exist_ok=True)
chelsea = Image.open(os.path.join(root, "chelsea.png")).convert("RGB").crop((100, 40, 164, 88))  # 64×48
coffee = Image.open(os.path.join(root, "coffee.png")).convert("RGB").resize((50, 37), Image.BICUBIC)


def exif_with(orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


def save(name, image, **kw):
    path = os.path.join(out, name)
    image.save(path, **kw)
    return path


files = [
    save("chelsea_lossy.webp", chelsea, quality=80),
    save("chelsea_lossless.webp", chelsea, lossless=True),
    save("coffee_rgba.webp", coffee.convert("RGBA"), lossless=True),
    save("chelsea_anim.webp", chelsea, save_all=True, append_images=[coffee.resize((64, 48))], duration=100, lossless=True),
    save("chelsea.gif", chelsea.quantize(64)),
    save("chelsea_interlaced.gif", chelsea.quantize(32), interlace=True),
    save("chelsea_anim.gif", chelsea.quantize(64), save_all=True, append_images=[coffee.resize((64, 48)).quantize(64)]),
    save("chelsea_lzw.tiff", chelsea, compression="tiff_lzw"),
    save("coffee_raw.tiff", coffee),
    save("chelsea_grey.tiff", chelsea.convert("L"), compression="tiff_deflate"),
    save("chelsea_24.bmp", chelsea),
    save("coffee_24_odd_width.bmp", coffee),
    save("chelsea_8.bmp", chelsea.quantize(200)),
    save("chelsea_1.bmp", chelsea.convert("1")),
    save("chelsea_grey.bmp", chelsea.convert("L")),
    save("chelsea_orient6.png", chelsea, exif=exif_with(6)),
    save("chelsea_orient3.webp", chelsea, exif=exif_with(3), lossless=True),
    save("coffee_orient8.tiff", coffee, exif=exif_with(8)),
]
for o in range(2, 9):
    files.append(save(f"chelsea_orient{o}.jpg", chelsea, quality=90, exif=exif_with(o)))
for path in files:
    image = Image.open(path)
    image.convert("RGB").save(path + ".rgb.png")
    ImageOps.exif_transpose(Image.open(path)).convert("RGB").save(path + ".upright.png")
print(len(files), "files in", out)
