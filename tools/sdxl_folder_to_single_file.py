#!/usr/bin/python3
"""Writes a diffusers SDXL folder (fp16 variant) as one safetensors file in the names stable-diffusion.cpp
reads, so that the speed table compares mmx and stable-diffusion.cpp on the very same weights:
  - the UNet in SGM names (model.diffusion_model.input_blocks.N.M..., resnets' in_layers/emb_layers/
    out_layers/skip_connection, op and conv for the samplers, time_embed / label_emb / out), block numbers
    from the UNet's config;
  - the VAE under "vae." in diffusers' names (stable-diffusion.cpp converts those itself), its mid-block
    attention's linear weights as the 1×1 convolutions the original code has;
  - text_encoder as cond_stage_model.transformer.*, text_encoder_2 as cond_stage_model.1.transformer.*
    (stable-diffusion.cpp's own names for the two CLIP towers in Hugging Face layout).
Tensors are copied as stored (f16); only the safetensors headers are parsed, the data is streamed.

    /usr/bin/python3 tools/sdxl_folder_to_single_file.py /tmp/sdxl-rand /tmp/sdxl-rand.safetensors
"""
import json
import pathlib
import struct
import sys

from sgm_names import sgm_prefixes, to_sgm


def header(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n)), 8 + n


def unet_name(name, prefixes):
    return "model.diffusion_model." + to_sgm(name, prefixes)


def main():
    folder, out = pathlib.Path(sys.argv[1]), sys.argv[2]
    config = json.loads((folder / "unet" / "config.json").read_text())
    blocks = sgm_prefixes(config)
    parts = [("unet/diffusion_pytorch_model.fp16.safetensors", lambda n: unet_name(n, blocks)),
             ("vae/diffusion_pytorch_model.fp16.safetensors", lambda n: "vae." + n),
             ("text_encoder/model.fp16.safetensors", lambda n: "cond_stage_model.transformer." + n),
             ("text_encoder_2/model.fp16.safetensors", lambda n: "cond_stage_model.1.transformer." + n)]
    entries, offset = [], 0
    for file, rename in parts:
        head, start = header(folder / file)
        for name, info in head.items():
            if name == "__metadata__":
                continue
            new, shape = rename(name), list(info["shape"])
            if new == "cond_stage_model.1.transformer.text_projection.weight":
                new = "cond_stage_model.1.transformer.text_model.text_projection"
            if new.startswith("vae.") and ".mid_block.attentions." in new and len(shape) == 2 and new.endswith(".weight"):
                shape = shape + [1, 1]
            b, e = info["data_offsets"]
            entries.append((new, info["dtype"], shape, folder / file, start + b, e - b))
            offset += e - b
    meta, at = {}, 0
    for new, dtype, shape, _, _, size in entries:
        meta[new] = {"dtype": dtype, "shape": shape, "data_offsets": [at, at + size]}
        at += size
    head = json.dumps(meta).encode()
    head += b" " * (-len(head) % 8)
    with open(out, "wb") as f:
        f.write(struct.pack("<Q", len(head)) + head)
        for _, _, _, source, begin, size in entries:
            with open(source, "rb") as src:
                src.seek(begin)
                while size > 0:
                    chunk = src.read(min(size, 1 << 24))
                    f.write(chunk)
                    size -= len(chunk)
    print(f"{out}: {len(entries)} tensors, {at / 2**30:.2f} GiB")


if __name__ == "__main__":
    main()
