#!/usr/bin/python3
"""Writes tests/data/expected/sdxl-tiny-img2img.safetensors: StableDiffusionXLImg2ImgPipeline's own steps on
sdxl-tiny (fp32 weights) from tests/data/images/coffee.png at 64×64: VaeImageProcessor.preprocess(image, 64, 64)
(Pillow's Lanczos), vae.encode(x).latent_dist.sample(generator) · scaling_factor, get_timesteps(steps, strength),
scheduler.add_noise at the first kept timestep with randn from the same generator, then the loop of
pipeline_stable_diffusion_xl_img2img.py (guidance 5.0) from the fixture's prompt embeddings
(expected/sdxl-tiny.safetensors). Keys per case "<sampler> <steps> <strength>": preprocessed (the VAE's input),
init_latents (after add_noise) and step_latents [calls, 1, 4, 32, 32].

Run with Debian's python3-torch and python3-pil, and diffusers 0.30.3's source:
    PYTHONPATH=/path/to/diffusers/src /usr/bin/python3 tools/make_img2img_reference.py
"""
import json
import pathlib

import numpy as np

from diffusers_shim import load_model, read_safetensors, shim_missing_modules, write_safetensors

ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
CASES = [  # (name mmx takes, diffusers class, settings, steps, strength)
    ("Euler", "EulerDiscreteScheduler", {}, 10, 0.3),
    ("Euler", "EulerDiscreteScheduler", {}, 4, 0.75),
    ("Euler a", "EulerAncestralDiscreteScheduler", {}, 4, 0.75),
    ("DPM++ 2M", "DPMSolverMultistepScheduler", {}, 10, 0.3),
    ("Heun", "HeunDiscreteScheduler", {}, 4, 0.75),
]
SEED, GUIDANCE, SIZE = 3, 5.0, 64


def main():
    shim_missing_modules()
    import inspect

    import diffusers
    import PIL.Image
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from diffusers.image_processor import VaeImageProcessor

    folder = DATA / "models" / "sdxl-tiny"


    unet, vae = load_model(UNet2DConditionModel, folder / "unet"), load_model(AutoencoderKL, folder / "vae")
    processor = VaeImageProcessor(vae_scale_factor=2 ** (len(vae.config.block_out_channels) - 1))
    e = {k: torch.from_numpy(v.copy()) for k, v in read_safetensors(DATA / "expected" / "sdxl-tiny.safetensors").items()}
    context = torch.cat([e["negative_prompt_embeds"], e["prompt_embeds"]])
    text_embeds = torch.cat([e["negative_pooled_prompt_embeds"], e["pooled_prompt_embeds"]])
    time_ids = torch.tensor([[SIZE, SIZE, 0, 0, SIZE, SIZE]] * 2, dtype=torch.float32)
    base = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
    image = PIL.Image.open(DATA / "images" / "coffee.png").convert("RGB")
    out = {}
    with torch.no_grad():
        for name, class_name, settings, steps, strength in CASES:
            key = f"{name} {steps} {strength}"
            scheduler = getattr(diffusers, class_name).from_config({**base, **settings})
            scheduler.set_timesteps(steps)
            init_timestep = min(int(steps * strength), steps)  # get_timesteps
            t_start = max(steps - init_timestep, 0)
            timesteps = scheduler.timesteps[t_start * scheduler.order:]
            generator = torch.Generator().manual_seed(SEED)
            x = processor.preprocess(image, height=SIZE, width=SIZE)
            latents = vae.encode(x).latent_dist.sample(generator) * vae.config.scaling_factor
            noise = torch.randn(latents.shape, generator=generator)
            latents = scheduler.add_noise(latents, noise, timesteps[:1])
            out[key + "/preprocessed"] = x.numpy()
            out[key + "/init_latents"] = latents.numpy().copy()
            params = inspect.signature(scheduler.step).parameters
            extra = {k: v for k, v in (("eta", 0.0), ("generator", generator)) if k in params}
            step_latents = []
            for t in timesteps:
                model_input = scheduler.scale_model_input(torch.cat([latents] * 2), t)
                noise_pred = unet(model_input, t, encoder_hidden_states=context,
                                  added_cond_kwargs={"text_embeds": text_embeds, "time_ids": time_ids}).sample
                uncond, cond = noise_pred.chunk(2)
                latents = scheduler.step(uncond + GUIDANCE * (cond - uncond), t, latents, **extra, return_dict=False)[0]
                step_latents.append(latents.numpy().copy())
            out[key + "/step_latents"] = np.stack(step_latents)
            print(key, len(step_latents), "calls")
    write_safetensors(DATA / "expected" / "sdxl-tiny-img2img.safetensors", out)


if __name__ == "__main__":
    main()
