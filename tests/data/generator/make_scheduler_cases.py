#!/usr/bin/python3
"""Writes tests/data/schedulers/ddim.json: diffusers 0.30.3's DDIMScheduler (Debian's python3-torch 1.13) on
four configs — SDXL's own DDIM settings, the class defaults, trailing spacing with v-prediction and zero
terminal SNR, linspace spacing with sample prediction and the cosine schedule — : its timesteps after
set_timesteps(1, 4, 25, 50), a whole 4-step and 25-step loop of step() on fixed random model outputs, and
add_noise. Floats are written as the exact values of the float32 results.
Run: PYTHONPATH=/path/to/diffusers-v0.30.3/src:tools /usr/bin/python3 tests/data/generator/make_scheduler_cases.py"""
import json
import os

import torch
from diffusers_shim import shim_missing_modules

shim_missing_modules()
from diffusers import DDIMScheduler  # noqa: E402

SDXL = {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012, "clip_sample": False,
        "set_alpha_to_one": False, "steps_offset": 1, "timestep_spacing": "leading", "num_train_timesteps": 1000}
CONFIGS = {
    "sdxl": SDXL,
    "defaults": {},
    "trailing_v_zero_snr": {**SDXL, "timestep_spacing": "trailing", "prediction_type": "v_prediction",
                            "rescale_betas_zero_snr": True, "set_alpha_to_one": True},
    "linspace_sample_cosine": {"beta_schedule": "squaredcos_cap_v2", "timestep_spacing": "linspace",
                               "prediction_type": "sample", "clip_sample": True, "clip_sample_range": 0.5},
}
SHAPE = (1, 4, 4, 4)


def floats(t):
    return [float(x) for x in t.flatten().tolist()]


cases = []
for name, config in CONFIGS.items():
    case = {"name": name, "config": {"_class_name": "DDIMScheduler", **config}, "timesteps": {}, "loops": {}}
    for steps in (1, 4, 25, 50):
        s = DDIMScheduler.from_config(config)
        s.set_timesteps(steps)
        case["timesteps"][str(steps)] = [int(t) for t in s.timesteps]
    for steps in (4, 25):
        s = DDIMScheduler.from_config(config)
        s.set_timesteps(steps)
        g = torch.Generator().manual_seed(steps)
        sample = torch.randn(SHAPE, generator=g)
        loop = {"sample": floats(sample), "model_outputs": [], "prev_samples": []}
        for t in s.timesteps:
            out = torch.randn(SHAPE, generator=g)
            sample = s.step(out, t, sample).prev_sample
            loop["model_outputs"].append(floats(out))
            loop["prev_samples"].append(floats(sample))
        case["loops"][str(steps)] = loop
    s = DDIMScheduler.from_config(config)
    s.set_timesteps(4)
    g = torch.Generator().manual_seed(99)
    original, noise = torch.randn(SHAPE, generator=g), torch.randn(SHAPE, generator=g)
    t = s.timesteps[1:2]
    case["add_noise"] = {"step_index": 1, "original": floats(original), "noise": floats(noise),
                         "noisy": floats(s.add_noise(original, noise, t))}
    cases.append(case)

out = os.path.join(os.path.dirname(__file__), "..", "schedulers", "ddim.json")
with open(out, "w") as f:
    json.dump({"source": "diffusers 0.30.3 DDIMScheduler, torch " + torch.__version__, "shape": list(SHAPE),
               "cases": cases}, f)
print("wrote", out)
