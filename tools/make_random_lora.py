#!/usr/bin/python3
"""Writes a random LoRA adapter the size of a published one for a diffusers UNet folder, to time loading and
merging on real SDXL shapes: by default LCM-LoRA SDXL's layout (latent-consistency/lcm-lora-sdxl: rank 64,
diffusers/PEFT keys on every attention projection, feed-forward, proj_in/proj_out and resnet conv1 /
conv2 / time_emb_proj / conv_shortcut), f16, up and down ~ N(0, 0.01). Only the UNet's safetensors header
is read (its names and shapes), so the folder's random weights need not fit in memory.

    /usr/bin/python3 tools/make_random_lora.py UNET.safetensors OUT.safetensors [RANK] [peft|kohya]

kohya writes the same pairs as lora_unet_<module with '_'>.lora_down/.lora_up/.alpha (alpha = rank), the
format stable-diffusion.cpp of 2024 reads, so both programs can time the same adapter.
"""
import json
import struct
import sys

import numpy as np

KEEP = ("attn1.to_", "attn2.to_", ".ff.net.0.proj", ".ff.net.2", ".proj_in", ".proj_out", ".conv1", ".conv2",
        ".time_emb_proj", ".conv_shortcut")


def main():
    unet, out = sys.argv[1], sys.argv[2]
    rank = int(sys.argv[3]) if len(sys.argv) > 3 else 64
    kohya = len(sys.argv) > 4 and sys.argv[4] == "kohya"
    with open(unet, "rb") as f:
        header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
    rng = np.random.default_rng(0)
    tensors = {}
    for name, info in sorted(header.items()):
        if name == "__metadata__" or not name.endswith(".weight") or len(info["shape"]) not in (2, 4):
            continue
        module = name[:-len(".weight")]
        if not any(k in module for k in KEEP):
            continue
        shape = info["shape"]
        down = (shape[1], *shape[2:]) if len(shape) == 4 else (shape[1],)
        up = (1, 1) if len(shape) == 4 else ()
        a = (rng.standard_normal((rank, *down), dtype=np.float32) * 0.01).astype(np.float16)
        b = (rng.standard_normal((shape[0], rank, *up), dtype=np.float32) * 0.01).astype(np.float16)
        if kohya:
            key = "lora_unet_" + module.replace(".", "_")
            tensors[key + ".lora_down.weight"], tensors[key + ".lora_up.weight"] = a, b
            tensors[key + ".alpha"] = np.array(float(rank), dtype=np.float16)
        else:
            tensors[f"unet.{module}.lora_A.weight"], tensors[f"unet.{module}.lora_B.weight"] = a, b
    meta, offset, blobs = {}, 0, []
    for name, array in tensors.items():
        data = array.tobytes()
        meta[name] = {"dtype": "F16", "shape": list(array.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    head = json.dumps(meta).encode()
    head += b" " * (-len(head) % 8)
    with open(out, "wb") as f:
        f.write(struct.pack("<Q", len(head)) + head)
        for blob in blobs:
            f.write(blob)
    print(f"{out}: {len(tensors) // (3 if kohya else 2)} modules, rank {rank}, {offset / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
