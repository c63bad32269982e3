#!/usr/bin/python3
"""Writes tests/data/expected/sdxl-tiny-samplers.safetensors: StableDiffusionXLPipeline's denoising loop on
sdxl-tiny (fp32 weights) for each sampler mmx runs by name, 4 steps, guidance 5.0, 64×64, seed 7, from the
fixture's prompt embeddings (expected/sdxl-tiny.safetensors, made by diffusers' own encode_prompt): latents
from torch.Generator().manual_seed(7), then per UNet call scale_model_input, the UNet on [uncond; cond],
classifier-free guidance and scheduler.step with the pipeline's extra_step_kwargs (generator=, eta=0.0) — the
loop of pipeline_stable_diffusion_xl.py, with the scheduler built as OtherScheduler.from_config(folder config)
plus the settings the A1111 name implies. Keys: <name>/step_latents [calls, 1, 4, 32, 32].

Run with Debian's python3-torch and diffusers 0.30.3's source:
    PYTHONPATH=/path/to/diffusers/src /usr/bin/python3 tools/make_sampler_pipeline_reference.py
"""
import json
import pathlib

import numpy as np

from diffusers_shim import read_safetensors, shim_missing_modules, write_safetensors

ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
SAMPLERS = {  # the name mmx takes → (diffusers class, settings the name implies)
    "Euler a": ("EulerAncestralDiscreteScheduler", {}),
    "DDIM": ("DDIMScheduler", {}),
    "DPM++ 2M": ("DPMSolverMultistepScheduler", {}),
    "DPM++ 2M Karras": ("DPMSolverMultistepScheduler", {"use_karras_sigmas": True}),
    "DPM++ 2M SDE": ("DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++"}),
    "Heun": ("HeunDiscreteScheduler", {}),
    "UniPC": ("UniPCMultistepScheduler", {}),
    "DPM++ SDE": ("DPMSolverSinglestepScheduler", {}),
    "LCM": ("LCMScheduler", {}),
    "TCD": ("TCDScheduler", {}),
}
SEED, STEPS, GUIDANCE = 7, 4, 5.0


def main():
    shim_missing_modules()
    import inspect

    import diffusers
    import torch
    from diffusers import UNet2DConditionModel

    folder = DATA / "models" / "sdxl-tiny"
    unet_config = {k: v for k, v in json.loads((folder / "unet" / "config.json").read_text()).items()
                   if not k.startswith("_")}
    unet = UNet2DConditionModel(**unet_config)
    unet.load_state_dict({k: torch.from_numpy(v.astype(np.float32))
                          for k, v in read_safetensors(folder / "unet" / "diffusion_pytorch_model.safetensors").items()})
    unet.eval()
    e = {k: torch.from_numpy(v) for k, v in read_safetensors(DATA / "expected" / "sdxl-tiny.safetensors").items()}
    context = torch.cat([e["negative_prompt_embeds"], e["prompt_embeds"]])
    text_embeds = torch.cat([e["negative_pooled_prompt_embeds"], e["pooled_prompt_embeds"]])
    time_ids = torch.cat([e["add_time_ids"], e["add_time_ids"]])
    base = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
    out = {}
    for name, (class_name, settings) in SAMPLERS.items():
        scheduler = getattr(diffusers, class_name).from_config({**base, **settings})
        scheduler.set_timesteps(STEPS)
        generator = torch.Generator().manual_seed(SEED)
        latents = torch.randn((1, 4, 32, 32), generator=generator) * scheduler.init_noise_sigma
        params = inspect.signature(scheduler.step).parameters
        extra = {k: v for k, v in (("eta", 0.0), ("generator", generator)) if k in params}
        steps = []
        with torch.no_grad():
            for t in scheduler.timesteps:
                model_input = scheduler.scale_model_input(torch.cat([latents] * 2), t)
                noise = unet(model_input, t, encoder_hidden_states=context,
                             added_cond_kwargs={"text_embeds": text_embeds, "time_ids": time_ids}).sample
                uncond, cond = noise.chunk(2)
                noise = uncond + GUIDANCE * (cond - uncond)
                latents = scheduler.step(noise, t, latents, **extra, return_dict=False)[0]
                steps.append(latents.numpy().copy())
        out[name + "/step_latents"] = np.stack(steps)
        print(name, class_name, len(steps), "calls")
    write_safetensors(DATA / "expected" / "sdxl-tiny-samplers.safetensors", out)


if __name__ == "__main__":
    main()
