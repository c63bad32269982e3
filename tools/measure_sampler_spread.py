#!/usr/bin/python3
"""Measures diffusers' own float32-vs-float64 spread of the sampler loop that
tools/make_sampler_pipeline_reference.py records (sdxl-tiny, 4 steps, CFG 5, seed 7): the same loop with the UNet in
float32 and in float64, the stochastic samplers' noise drawn in float32 for both, and the largest difference of any
step's latents. tests/README.md derives the pipeline bounds from it (twice the spread where above 5e-5).

Run with Debian's python3-torch and diffusers 0.30.3's source:
    PYTHONPATH=/path/to/diffusers/src:tools /usr/bin/python3 tools/measure_sampler_spread.py
"""
import inspect
import json

import numpy as np

from diffusers_shim import read_safetensors, shim_missing_modules

shim_missing_modules()
import diffusers  # noqa: E402
import diffusers.schedulers.scheduling_euler_ancestral_discrete as euler_a  # noqa: E402
import diffusers.schedulers.scheduling_lcm as lcm  # noqa: E402
import diffusers.schedulers.scheduling_tcd as tcd  # noqa: E402
import diffusers.utils.torch_utils as torch_utils  # noqa: E402
import torch  # noqa: E402
from diffusers import UNet2DConditionModel  # noqa: E402

import make_sampler_pipeline_reference as reference  # noqa: E402

draw = torch_utils.randn_tensor


def randn_float32(shape, generator=None, device=None, dtype=None, layout=None):
    return draw(shape, generator=generator, device=device, dtype=torch.float32).to(dtype or torch.float32)


for module in (euler_a, lcm, tcd):
    module.randn_tensor = randn_float32

folder = reference.DATA / "models" / "sdxl-tiny"
config = {k: v for k, v in json.loads((folder / "unet" / "config.json").read_text()).items() if not k.startswith("_")}
unet32 = UNet2DConditionModel(**config)
unet32.load_state_dict({k: torch.from_numpy(v.astype(np.float32)) for k, v in
                        read_safetensors(folder / "unet" / "diffusion_pytorch_model.safetensors").items()})
unet64 = UNet2DConditionModel(**config)
unet64.load_state_dict(unet32.state_dict())
unet32, unet64 = unet32.eval(), unet64.double().eval()
e = {k: torch.from_numpy(v.copy()) for k, v in
     read_safetensors(reference.DATA / "expected" / "sdxl-tiny.safetensors").items() if v.dtype != np.int64}
base = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
for name, (class_name, settings) in reference.SAMPLERS.items():
    runs = []
    for dtype, unet in ((torch.float32, unet32), (torch.float64, unet64)):
        context = torch.cat([e["negative_prompt_embeds"], e["prompt_embeds"]]).to(dtype)
        text_embeds = torch.cat([e["negative_pooled_prompt_embeds"], e["pooled_prompt_embeds"]]).to(dtype)
        time_ids = torch.cat([e["add_time_ids"], e["add_time_ids"]]).to(dtype)
        scheduler = getattr(diffusers, class_name).from_config({**base, **settings})
        scheduler.set_timesteps(reference.STEPS)
        generator = torch.Generator().manual_seed(reference.SEED)
        latents = torch.randn((1, 4, 32, 32), generator=generator).to(dtype) * scheduler.init_noise_sigma
        params = inspect.signature(scheduler.step).parameters
        extra = {k: v for k, v in (("eta", 0.0), ("generator", generator)) if k in params}
        steps = []
        with torch.no_grad():
            for t in scheduler.timesteps:
                model_input = scheduler.scale_model_input(torch.cat([latents] * 2), t)
                noise = unet(model_input, t, encoder_hidden_states=context,
                             added_cond_kwargs={"text_embeds": text_embeds, "time_ids": time_ids}).sample
                uncond, cond = noise.chunk(2)
                latents = scheduler.step(uncond + reference.GUIDANCE * (cond - uncond), t, latents, **extra,
                                         return_dict=False)[0]
                steps.append(latents.double().numpy().copy())
        runs.append(np.stack(steps))
    print(f"{name:18s} float32 vs float64 spread: max |d| {np.abs(runs[0] - runs[1]).max():.3e}")
