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


def header(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n)), 8 + n


def sgm_blocks(config):
    n, layers = len(config["block_out_channels"]), config["layers_per_block"]
    layers = layers if isinstance(layers, list) else [layers] * n
    m = {"conv_in": "input_blocks.0.0", "time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
         "add_embedding.linear_1": "label_emb.0.0", "add_embedding.linear_2": "label_emb.0.2", "conv_norm_out": "out.0",
         "conv_out": "out.2", "mid_block.resnets.0": "middle_block.0", "mid_block.attentions.0": "middle_block.1",
         "mid_block.resnets.1": "middle_block.2"}
    at = 1
    for i in range(n):
        for j in range(layers[i]):
            m[f"down_blocks.{i}.resnets.{j}"] = f"input_blocks.{at}.0"
            m[f"down_blocks.{i}.attentions.{j}"] = f"input_blocks.{at}.1"
            at += 1
        if i + 1 < n:
            m[f"down_blocks.{i}.downsamplers.0.conv"] = f"input_blocks.{at}.0.op"
            at += 1
    at = 0
    for i in range(n):
        cross = config["up_block_types"][i].startswith("CrossAttn")
        for j in range(layers[n - 1 - i] + 1):
            m[f"up_blocks.{i}.resnets.{j}"] = f"output_blocks.{at}.0"
            m[f"up_blocks.{i}.attentions.{j}"] = f"output_blocks.{at}.1"
            if j == layers[n - 1 - i] and i + 1 < n:
                m[f"up_blocks.{i}.upsamplers.0.conv"] = f"output_blocks.{at}.{2 if cross else 1}.conv"
            at += 1
    return m


RESNET = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1", "norm2": "out_layers.0",
          "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}


def unet_name(name, blocks):
    for d in sorted(blocks, key=len, reverse=True):
        if name.startswith(d + "."):
            rest = name[len(d) + 1:]
            if ".resnets." in d:
                module, _, leaf = rest.rpartition(".")
                rest = RESNET.get(module, module) + "." + leaf
            return "model.diffusion_model." + blocks[d] + "." + rest
    raise ValueError(f"no SGM name for unet tensor {name}")


def main():
    folder, out = pathlib.Path(sys.argv[1]), sys.argv[2]
    config = json.loads((folder / "unet" / "config.json").read_text())
    blocks = sgm_blocks(config)
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
