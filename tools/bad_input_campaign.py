#!/usr/bin/env python3
"""A deterministic bad-input campaign against an mmx binary: every integer and float key of the test
models' configs set to values no architecture means, the command-line numbers set to extremes, and
each case checked for what issue 18 forbids: a crash (a signal), a hang (over 60 s), an exit code other
than 0, 1 or 2, or an exit 0 that printed NaN/inf or was given a value outside the model's limits.

    python3 tools/bad_input_campaign.py build/release/mmx [tests/data]

Debian's python3, standard library only. Prints one line per failing case and a summary; exits 1 when any
case failed. Not in CI (a few minutes); the fuzzers and tests/cli/test_hostile_inputs.cpp are.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

BINARY = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build/release/mmx")
DATA = os.path.abspath(sys.argv[2] if len(sys.argv) > 2 else "tests/data")
MODELS = os.path.join(DATA, "models")
IMAGE = os.path.join(DATA, "images", "horse.png")

INT_VALUES = [0, -1, 2 ** 31, 2 ** 62, 2 ** 63 - 1, 2 ** 64 - 1]
FLOAT_VALUES = [-1.0, 0.0, 1e-45, 1e308, -1e308]
OTHER_VALUES = ["text", None, [], {}]

failures, cases = [], 0
OUT = os.path.join(tempfile.mkdtemp(prefix="mmx-campaign-"), "out.png")  # generate's image, overwritten


def run(args, what, expect_refusal=False):
    global cases
    cases += 1
    try:
        p = subprocess.run([BINARY] + args, capture_output=True, text=True, timeout=60, errors="replace")
    except subprocess.TimeoutExpired:
        failures.append("HANG  " + what)
        return
    out = p.stdout.lower()
    if p.returncode < 0 or p.returncode > 2:
        failures.append("CRASH %s: exit %d: %s" % (what, p.returncode, p.stderr.strip()[-300:]))
    elif p.returncode == 0 and ("nan" in out.split() or " nan" in out or "inf" in out.split()):
        failures.append("NONFINITE %s: exit 0 printed NaN/inf" % what)
    elif p.returncode == 0 and expect_refusal:
        failures.append("ACCEPTED %s: exit 0" % what)


MEANINGLESS = (0, -1, 2 ** 62, 2 ** 63 - 1, 2 ** 64 - 1, 1e308, -1e308, -1.0)


def config_cases(model, config_file, command, limits_keys, meaningless=MEANINGLESS):
    """Every number in `config_file` (top level and one level of sub-configs) set to each bad value."""
    source = os.path.join(MODELS, model)
    original = json.load(open(os.path.join(source, config_file)))
    keys = []
    for k, v in original.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            keys.append((None, k, v))
        elif isinstance(v, dict):
            keys += [(k, kk, vv) for kk, vv in v.items() if isinstance(vv, (int, float)) and not isinstance(vv, bool)]
    with tempfile.TemporaryDirectory() as tmp:
        for parent, key, v in keys:
            values = INT_VALUES if isinstance(v, int) else FLOAT_VALUES
            for bad in values + OTHER_VALUES:
                folder = os.path.join(tmp, "m")
                shutil.rmtree(folder, ignore_errors=True)
                shutil.copytree(source, folder)
                j = json.loads(json.dumps(original))
                (j[parent] if parent else j)[key] = bad
                with open(os.path.join(folder, config_file), "w") as f:
                    json.dump(j, f)
                name = (parent + "." if parent else "") + key
                refused = key in limits_keys and bad in meaningless
                run([c.replace("MODEL", folder) for c in command], "%s %s %s=%r" % (model, config_file, name, bad), refused)


config_cases("bert-tiny", "config.json", ["embed", "--model", "MODEL", "--text", "a cat", "--json"],
             {"hidden_size", "intermediate_size", "num_attention_heads", "vocab_size", "max_position_embeddings"})
config_cases("bert-tiny", "tokenizer_config.json", ["embed", "--model", "MODEL", "--text", "a cat", "--json"],
             {"model_max_length"}, (0, -1, -1.0, -1e308))
config_cases("vit-tiny", "config.json", ["embed", "--model", "MODEL", "--image", IMAGE, "--json"],
             {"hidden_size", "intermediate_size", "num_attention_heads", "num_channels"})
config_cases("vit-tiny", "preprocessor_config.json", ["embed", "--model", "MODEL", "--image", IMAGE, "--json"],
             {"rescale_factor"})
config_cases("clip-tiny", "config.json", ["similarity", "--model", "MODEL", "--text", "a cat", "--image", IMAGE, "--json"],
             {"projection_dim"})
for component in ["unet", "vae"]:
    config_cases("sdxl-tiny", component + "/config.json",
                 ["generate", "--model", "MODEL", "--prompt", "a cat", "--steps", "1", "--seed", "0", "--output", OUT, "--force"],
                 {"norm_num_groups", "attention_head_dim", "in_channels", "out_channels", "latent_channels"})

# The command line's numbers at their extremes.
NUMBERS = ["0", "-1", "1e308", "nan", "inf", "99999999999999999999", "-99999999999999999999", "1.5", "x"]
bert, sdxl = os.path.join(MODELS, "bert-tiny"), os.path.join(MODELS, "sdxl-tiny")
for option in ["--threads", "--max-length", "--batch-tokens"]:
    for v in NUMBERS:
        run(["embed", "--model", bert, "--text", "a cat", option, v], "embed %s %s" % (option, v))
for option in ["--width", "--height", "--steps", "--guidance", "--seed"]:
    for v in NUMBERS + ["100000", "8192"]:
        run(["generate", "--model", sdxl, "--prompt", "a cat", "--steps", "1", option, v, "--output", OUT, "--force"],
            "generate %s %s" % (option, v), option != "--seed" and v in ("nan", "inf", "1e308", "100000", "8192"))
for v in NUMBERS:
    run(["classify", "--model", os.path.join(MODELS, "vit-tiny-classifier"), "--image", IMAGE, "--top-k", v], "classify --top-k " + v)

for line in failures:
    print(line)
print("%d cases, %d failed" % (cases, len(failures)))
shutil.rmtree(os.path.dirname(OUT), ignore_errors=True)
sys.exit(1 if failures else 0)
