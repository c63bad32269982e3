#!/usr/bin/env python3
"""Writes the fuzzers' seed corpus, tests/fuzz/corpus/<target>/, from the test data and by hand.

Run from the repository root with Debian's python3 (standard library only):
    python3 tests/fuzz/make_corpus.py
Seeds are small (libFuzzer mutates faster on small inputs): the test models' configs, the small test
images, reduced tokenizer files, and the hostile cases of the bad-input campaign (tests/cli/
test_hostile_inputs.cpp, tests/unit/test_torch_checkpoint.cpp) written out as files, so every CI run
replays them before it mutates. A crash the fuzzers find in CI is added here as a regression input:
copy libFuzzer's crash-<sha1> file into the target's folder (regression-<what>.<ext>) and commit it.
"""
import io
import json
import os
import shutil
import struct

from PIL import Image, PngImagePlugin

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "tests", "data")
OUT = os.path.join(ROOT, "tests", "fuzz", "corpus")


def put(target, name, data):
    folder = os.path.join(OUT, target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def copy(target, source, name=None):
    put(target, name or os.path.basename(source), open(os.path.join(DATA, source), "rb").read())


def with_value(source, key, value):
    j = json.load(open(os.path.join(DATA, source)))
    j[key] = value
    return json.dumps(j)


# ---- safetensors
def safetensors(tensors, metadata=None):
    header, blob = {}, b""
    if metadata:
        header["__metadata__"] = metadata
    for name, (dtype, shape, data) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(blob), len(blob) + len(data)]}
        blob += data
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + blob


copy("fuzz_safetensors", "torch/views.safetensors")
put("fuzz_safetensors", "two.safetensors",
    safetensors({"a": ("F32", [2, 2], struct.pack("<4f", 1, 2, 3, 4)), "b": ("F16", [3], b"\x00\x3c" * 3)}, {"format": "pt"}))
put("fuzz_safetensors", "regression-wrapping-bytes.safetensors",  # 2^62 elements × 8 bytes wraps to 0
    safetensors({"a": ("F64", [2 ** 31, 2 ** 31], b"")}))

# ---- torch.save archives (zip + pickle), and the campaign's hostile ones
def le(v, n):
    return (v & (2 ** (8 * n) - 1)).to_bytes(n, "little")


def zip_archive(entries, zip64_end=None):
    out, directory = b"", b""
    for name, data, zip64_size, zip64_offset in entries:
        local = len(out)
        n = name.encode()
        out += le(0x04034B50, 4) + le(20, 2) + le(0, 2) * 2 + le(0, 4) * 2 + le(len(data), 4) * 2 + le(len(n), 2) + le(0, 2) + n + data
        extra = b""
        if zip64_size is not None or zip64_offset is not None:
            fields = (le(zip64_size, 8) * 2 if zip64_size is not None else b"") + (le(zip64_offset, 8) if zip64_offset is not None else b"")
            extra = le(1, 2) + le(len(fields), 2) + fields
        size = 0xFFFFFFFF if zip64_size is not None else len(data)
        directory += (le(0x02014B50, 4) + le(20, 2) * 2 + le(0, 2) * 2 + le(0, 4) * 2 + le(size, 4) * 2 + le(len(n), 2) +
                      le(len(extra), 2) + le(0, 2) * 3 + le(0, 4) + le(0xFFFFFFFF if zip64_offset is not None else local, 4) + n + extra)
    cd = len(out)
    out += directory
    if zip64_end is not None:
        out += le(0x07064B50, 4) + le(0, 4) + le(zip64_end, 8) + le(1, 4)
    return out + le(0x06054B50, 4) + le(0, 4) + le(len(entries), 2) * 2 + le(len(directory), 4) + le(cd, 4) + le(0, 2)


class Pickle:
    def __init__(self):
        self.b = b"\x80\x02"

    def op(self, c):
        self.b += c
        return self

    def text(self, s):
        return self.op(b"X" + le(len(s), 4) + s.encode())

    def int(self, v):
        return self.op(b"\x8a\x08" + le(v, 8))

    def glob(self, module, name):
        return self.op(b"c" + module.encode() + b"\n" + name.encode() + b"\n")

    def ints(self, v):
        self.op(b"(")
        for x in v:
            self.int(x)
        return self.op(b"t")


def state_dict(storage_numel, offset, size, stride):
    p = Pickle().glob("collections", "OrderedDict").op(b")R").op(b"(").text("w")
    p.glob("torch._utils", "_rebuild_tensor_v2").op(b"(")
    p.op(b"(").text("storage").glob("torch", "FloatStorage").text("0").text("cpu").int(storage_numel).op(b"tQ")
    p.int(offset).ints(size).ints(stride).op(b"\x89").glob("collections", "OrderedDict").op(b")R").op(b"tR").op(b"u.")
    return p.b


def archive(pickle, storage):
    return zip_archive([("archive/data.pkl", pickle, None, None), ("archive/data/0", storage, None, None)])


copy("fuzz_torch_bin", "torch/views.bin")
copy("fuzz_torch_bin", "torch/evil.bin")
floats = struct.pack("<4f", 1, 2, 3, 4)
put("fuzz_torch_bin", "transposed.bin", archive(state_dict(4, 0, [2, 2], [1, 2]), floats))
put("fuzz_torch_bin", "regression-zip64-size-wraps.bin",
    zip_archive([("archive/data.pkl", state_dict(4, 0, [4], [1]), None, None), ("archive/data/0", floats, 2 ** 64 - 8, None)]))
put("fuzz_torch_bin", "regression-zip64-offset-wraps.bin",
    zip_archive([("archive/data.pkl", state_dict(4, 0, [4], [1]), None, None), ("archive/data/0", floats, None, 2 ** 64 - 21)]))
put("fuzz_torch_bin", "regression-zip64-end-wraps.bin", zip_archive([("archive/data.pkl", state_dict(4, 0, [4], [1]), None, None)], 2 ** 64 - 31))
put("fuzz_torch_bin", "regression-storage-bytes-wrap.bin", archive(state_dict(2 ** 62, 0, [0], [1]), b""))
put("fuzz_torch_bin", "regression-expanded-view.bin", archive(state_dict(4, 0, [2 ** 31, 2 ** 31], [0, 0]), floats))
put("fuzz_torch_bin", "regression-stride-overflows.bin", archive(state_dict(4, 0, [3], [2 ** 62]), floats))
put("fuzz_torch_bin", "regression-nested-tuples.bin", archive(b"\x80\x02)" + b"\x85" * 5000 + b".", b""))
put("fuzz_torch_bin", "regression-marks.bin", archive(b"\x80\x02" + b"(" * 5000 + b".", b""))
put("fuzz_torch_bin", "regression-self-appending-list.bin", archive(b"\x80\x02]q\x01" + b"h\x01a" * 1000 + b".", b""))

# ---- images: the small test images
for name in ["pixel_1x1.png", "gray16_64x48.png", "green_palette.png", "truncated.jpg", "wide_1000x20.jpg", "horse.png"]:
    copy("fuzz_image", "images/" + name)
for name in ["chelsea_lossy.webp", "chelsea_anim.webp", "chelsea_interlaced.gif", "coffee_raw.tiff", "chelsea_lzw.tiff",
             "chelsea_8.bmp", "chelsea_1.bmp", "chelsea_orient6.png", "chelsea_orient5.jpg"]:
    copy("fuzz_image", "images/formats/" + name)

# A generated image's parameters in A1111's text (a PNG "parameters" chunk, as mmx generate writes it).
_info = PngImagePlugin.PngInfo()
_info.add_itxt("parameters", 'a castle, at dusk\nNegative prompt: blurry\nSteps: 30, Sampler: DPM++ 2M Karras, '
               'CFG scale: 7.5, Seed: 1, Size: 64x64, Lora hashes: "a: 1, b: 2", Version: v1')
_buffer = io.BytesIO()
Image.new("RGB", (2, 2), (9, 99, 199)).save(_buffer, "PNG", pnginfo=_info)
put("fuzz_image", "generated_parameters.png", _buffer.getvalue())

# ---- scheduler configs of every class (the fuzzer reads each as every class)
for name, config in [("dpm-sde-karras", {"_class_name": "DPMSolverMultistepScheduler", "algorithm_type": "sde-dpmsolver++",
                                         "use_karras_sigmas": True, "solver_order": 2}),
                     ("unipc-order3", {"_class_name": "UniPCMultistepScheduler", "solver_order": 3, "disable_corrector": [0]}),
                     ("lcm", {"_class_name": "LCMScheduler", "original_inference_steps": 50, "timestep_scaling": 10.0}),
                     ("heun-karras", {"_class_name": "HeunDiscreteScheduler", "use_karras_sigmas": True})]:
    put("fuzz_diffusers_config", "scheduler-%s.json" % name, json.dumps(config))

# ---- text through the tokenizers
for i, text in enumerate(["A photo of a cat.", "naïve café 東京 ﬁ", "don't!!! <|endoftext|> [SEP] x", "\u00e9\u0301 \u200b\t\n ok",
                          "a" * 300]):
    put("fuzz_tokenizers", "text-%d.txt" % i, text)

# ---- tokenizer folders: the real files, cut to their first entries (what a load must survive)
vocab_txt = open(os.path.join(DATA, "tokenizers/bert-base-uncased/vocab.txt"), encoding="utf-8").read().split("\n")[:1200]
bert_config = open(os.path.join(DATA, "tokenizers/bert-base-uncased/tokenizer_config.json")).read()
bert_special = open(os.path.join(DATA, "tokenizers/bert-base-uncased/special_tokens_map.json")).read()
put("fuzz_tokenizer_files", "wordpiece", "\x00" + "\n".join(vocab_txt) + "\n@@\n" + bert_config + "\n@@\n" + bert_special)
clip_vocab = json.load(open(os.path.join(DATA, "tokenizers/clip/vocab.json"), encoding="utf-8"))
merges = open(os.path.join(DATA, "tokenizers/clip/merges.txt"), encoding="utf-8").read().split("\n")[:300]
kept = {k: v for k, v in clip_vocab.items() if v < 600 or k in ("<|startoftext|>", "<|endoftext|>")}
clip_config = open(os.path.join(DATA, "tokenizers/clip/tokenizer_config.json")).read()
put("fuzz_tokenizer_files", "clip-bpe", "\x01" + json.dumps(kept, ensure_ascii=False) + "\n@@\n" + "\n".join(merges) + "\n@@\n" + clip_config)
fast = json.load(open(os.path.join(DATA, "tokenizers/bert-base-uncased-fast/tokenizer.json"), encoding="utf-8"))
fast["model"]["vocab"] = {k: v for k, v in fast["model"]["vocab"].items() if v < 1200}
fast["added_tokens"] = [t for t in fast["added_tokens"] if t["id"] < 1200]
put("fuzz_tokenizer_files", "tokenizer-json", "\x02" + json.dumps(fast, ensure_ascii=False) + "\n@@\n" +
    open(os.path.join(DATA, "tokenizers/bert-base-uncased-fast/tokenizer_config.json")).read())

# ---- model configs (transformers), and values no architecture means
for source in ["models/bert-tiny/config.json", "models/vit-tiny/config.json", "models/clip-tiny/config.json",
               "models/vit-tiny/preprocessor_config.json", "real-configs/clip-vit-base-patch32/preprocessor_config.json",
               "real-configs/bert-base-uncased/config.json"]:
    copy("fuzz_config", source, source.replace("/", "_"))
for key, value in [("hidden_size", 2 ** 62), ("vocab_size", 2 ** 63 - 1), ("num_hidden_layers", 10 ** 9), ("layer_norm_eps", -1),
                   ("num_attention_heads", 0), ("hidden_size", 2 ** 64 - 1)]:
    put("fuzz_config", "regression-bert-%s-%s.json" % (key, value), with_value("models/bert-tiny/config.json", key, value))
for key, value in [("image_std", [1e-45] * 3), ("rescale_factor", 1e308), ("size", {"height": 2 ** 62, "width": 1})]:
    put("fuzz_config", "regression-processor-%s.json" % key, with_value("models/vit-tiny/preprocessor_config.json", key, value))

# ---- diffusers component configs
for component in ["unet", "vae", "scheduler"]:
    file = "scheduler_config.json" if component == "scheduler" else "config.json"
    copy("fuzz_diffusers_config", "models/sdxl-tiny/%s/%s" % (component, file), "tiny-%s.json" % component)
    copy("fuzz_diffusers_config", "real-configs/stable-diffusion-xl-base-1.0/%s/%s" % (component, file), "sdxl-%s.json" % component)
for key, value in [("norm_num_groups", 0), ("attention_head_dim", 0), ("block_out_channels", [2 ** 62, 2 ** 62]), ("norm_eps", -1)]:
    put("fuzz_diffusers_config", "regression-unet-%s.json" % key, with_value("models/sdxl-tiny/unet/config.json", key, value))
put("fuzz_diffusers_config", "regression-vae-norm_num_groups.json", with_value("models/sdxl-tiny/vae/config.json", "norm_num_groups", 0))
# A float where a list holds integers was cast (undefined behaviour); CI's fuzzer found it in the VAE's widths.
put("fuzz_diffusers_config", "regression-vae-float-width.json", with_value("models/sdxl-tiny/vae/config.json", "block_out_channels", [1e300, 64]))
put("fuzz_diffusers_config", "regression-unet-float-layers.json", with_value("models/sdxl-tiny/unet/config.json", "transformer_layers_per_block", [1.5, 1e300]))
put("fuzz_config", "regression-vit-float-patch.json", with_value("models/vit-tiny/config.json", "patch_size", [1e300, 4]))
put("fuzz_diffusers_config", "regression-scheduler-beta.json", with_value("models/sdxl-tiny/scheduler/scheduler_config.json", "beta_end", 1e308))
print("wrote", sum(len(files) for _, _, files in os.walk(OUT)), "seed files under", os.path.relpath(OUT, ROOT))
