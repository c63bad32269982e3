#!/usr/bin/python3
"""Writes tests/data/images/mask_ellipse.png (a blurred, tinted ellipse mask, 96×80 RGB), makes
tests/data/models/sdxl-tiny-inpaint (sdxl-tiny's folder as a StableDiffusionXLInpaintPipeline with a 9-channel
UNet: seeded random weights from torch.manual_seed(1)) and writes tests/data/expected/sdxl-tiny-inpaint.safetensors:
StableDiffusionXLInpaintPipeline's steps at 64×64, guidance 7.5, seed 5 from images/coffee.png and that mask —
VaeImageProcessor.preprocess of the image, the mask processor (Lanczos resize, convert("L"), binarize), the masked
image, prepare_latents (the VAE's sample, the noise, add_noise or pure noise at strength 1), prepare_mask_latents
(nearest interpolation, the masked image's VAE sample), then the loop: a 9-channel UNet takes [latents, mask,
masked image latents]; the 4-channel base blends the noised original outside the mask after every step.
Keys per case: mask [1, 1, 64, 64], init_latents and step_latents; padding_mask_crop (pad 4) from
images/inpaint_crop_image.png and images/inpaint_crop_mask.png: crop/region, crop/filled_image and filled_mask
("fill" resize), crop/step_latents, crop/generated (the decoded crop) and crop/image (apply_overlay); the resize
modes on shapes that need bands and cuts: fill_wide, fill_tall, overlay_wide.

Run with Debian's python3-torch and python3-pil, and diffusers 0.30.3's source:
    PYTHONPATH=/path/to/diffusers/src /usr/bin/python3 tools/make_inpaint_reference.py
"""
import json
import pathlib
import shutil

import numpy as np

from diffusers_shim import load_model, read_safetensors, shim_missing_modules, write_safetensors

ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
BASE = DATA / "models" / "sdxl-tiny"
INPAINT = DATA / "models" / "sdxl-tiny-inpaint"
CASES = [  # (folder, name mmx takes, diffusers class, steps, strength)
    ("sdxl-tiny", "Euler", "EulerDiscreteScheduler", 10, 0.9999),
    ("sdxl-tiny", "Euler a", "EulerAncestralDiscreteScheduler", 4, 1.0),
    ("sdxl-tiny-inpaint", "Euler", "EulerDiscreteScheduler", 10, 0.75),
    ("sdxl-tiny-inpaint", "DPM++ 2M", "DPMSolverMultistepScheduler", 4, 1.0),
]
SEED, GUIDANCE, SIZE, CROP_PAD = 5, 7.5, 64, 4


def make_mask(PIL):
    from PIL import ImageDraw, ImageFilter
    image = PIL.Image.new("RGB", (96, 80), (0, 0, 0))
    ImageDraw.Draw(image).ellipse((20, 14, 70, 60), fill=(255, 230, 200))
    image = image.filter(ImageFilter.GaussianBlur(4))
    image.save(DATA / "images" / "mask_ellipse.png")
    return image


def make_folder(torch, UNet2DConditionModel):
    if INPAINT.exists():
        shutil.rmtree(INPAINT)
    shutil.copytree(BASE, INPAINT, ignore=shutil.ignore_patterns("unet"))
    config = json.loads((BASE / "unet" / "config.json").read_text())
    config["in_channels"] = 9  # latents, the mask, the masked image's latents
    (INPAINT / "unet").mkdir()
    (INPAINT / "unet" / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    torch.manual_seed(1)
    unet = UNet2DConditionModel(**{k: v for k, v in config.items() if not k.startswith("_")})
    write_safetensors(INPAINT / "unet" / "diffusion_pytorch_model.safetensors",
                      {k: v.detach().numpy() for k, v in unet.state_dict().items()})
    index = json.loads((BASE / "model_index.json").read_text())
    index["_class_name"] = "StableDiffusionXLInpaintPipeline"
    (INPAINT / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")


def main():
    shim_missing_modules()
    import inspect

    import diffusers
    import PIL.Image
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from diffusers.image_processor import VaeImageProcessor

    mask_image = make_mask(PIL)
    make_folder(torch, UNet2DConditionModel)


    vae = load_model(AutoencoderKL, BASE / "vae")
    factor = 2 ** (len(vae.config.block_out_channels) - 1)
    image_processor = VaeImageProcessor(vae_scale_factor=factor)
    mask_processor = VaeImageProcessor(vae_scale_factor=factor, do_normalize=False, do_binarize=True,
                                       do_convert_grayscale=True)
    e = {k: torch.from_numpy(v.copy()) for k, v in read_safetensors(DATA / "expected" / "sdxl-tiny.safetensors").items()}
    context = torch.cat([e["negative_prompt_embeds"], e["prompt_embeds"]])
    text_embeds = torch.cat([e["negative_pooled_prompt_embeds"], e["pooled_prompt_embeds"]])
    time_ids = torch.tensor([[SIZE, SIZE, 0, 0, SIZE, SIZE]] * 2, dtype=torch.float32)
    coffee = PIL.Image.open(DATA / "images" / "coffee.png").convert("RGB")
    config = json.loads((BASE / "scheduler" / "scheduler_config.json").read_text())

    def encode(x, generator):  # _encode_vae_image
        return vae.config.scaling_factor * vae.encode(x).latent_dist.sample(generator)

    out = {}
    with torch.no_grad():
        for folder, name, class_name, steps, strength in CASES:
            key = f"{folder} {name} {steps} {strength}"
            unet = load_model(UNet2DConditionModel, DATA / "models" / folder / "unet")
            channels = unet.config.in_channels
            scheduler = getattr(diffusers, class_name).from_config(config)
            scheduler.set_timesteps(steps)
            init_timestep = min(int(steps * strength), steps)  # get_timesteps
            t_start = max(steps - init_timestep, 0)
            timesteps = scheduler.timesteps[t_start * scheduler.order:]
            generator = torch.Generator().manual_seed(SEED)
            init_image = image_processor.preprocess(coffee, height=SIZE, width=SIZE).to(torch.float32)
            mask = mask_processor.preprocess(mask_image, height=SIZE, width=SIZE)
            masked_image = init_image * (mask < 0.5)
            is_strength_max = strength == 1.0
            shape = (1, 4, SIZE // factor, SIZE // factor)
            image_latents = encode(init_image, generator) if channels == 4 or not is_strength_max else None
            noise = torch.randn(shape, generator=generator)
            latents = (noise * scheduler.init_noise_sigma if is_strength_max
                       else scheduler.add_noise(image_latents, noise, timesteps[:1]))
            small_mask = torch.nn.functional.interpolate(mask, size=(SIZE // factor, SIZE // factor))
            masked_latents = encode(masked_image, generator)
            mask2, masked2 = torch.cat([small_mask] * 2), torch.cat([masked_latents] * 2)
            out[key + "/mask"] = mask.numpy().copy()
            out[key + "/init_latents"] = latents.numpy().copy()
            params = inspect.signature(scheduler.step).parameters
            extra = {k: v for k, v in (("eta", 0.0), ("generator", generator)) if k in params}
            step_latents = []
            for i, t in enumerate(timesteps):
                model_input = scheduler.scale_model_input(torch.cat([latents] * 2), t)
                if channels == 9:
                    model_input = torch.cat([model_input, mask2, masked2], dim=1)
                noise_pred = unet(model_input, t, encoder_hidden_states=context,
                                  added_cond_kwargs={"text_embeds": text_embeds, "time_ids": time_ids}).sample
                uncond, cond = noise_pred.chunk(2)
                latents = scheduler.step(uncond + GUIDANCE * (cond - uncond), t, latents, **extra, return_dict=False)[0]
                if channels == 4:
                    proper = image_latents
                    if i < len(timesteps) - 1:
                        proper = scheduler.add_noise(proper, noise, torch.tensor([timesteps[i + 1]]))
                    latents = (1 - small_mask) * proper + small_mask * latents
                step_latents.append(latents.numpy().copy())
            out[key + "/step_latents"] = np.stack(step_latents)
            print(key, len(step_latents), "calls")
        # padding_mask_crop: the crop around a mask near the bottom edge, "fill"-resized, generated, pasted back.
        original = coffee.crop((250, 150, 250 + SIZE, 150 + SIZE))
        original.save(DATA / "images" / "inpaint_crop_image.png")
        from PIL import ImageDraw
        crop_mask = PIL.Image.new("RGB", (SIZE, SIZE), (0, 0, 0))
        ImageDraw.Draw(crop_mask).ellipse((6, 50, 40, 62), fill=(255, 255, 255))
        crop_mask.save(DATA / "images" / "inpaint_crop_mask.png")
        region = mask_processor.get_crop_region(crop_mask, SIZE, SIZE, pad=CROP_PAD)
        init_image = image_processor.preprocess(original, height=SIZE, width=SIZE, crops_coords=region,
                                                resize_mode="fill").to(torch.float32)
        mask = mask_processor.preprocess(crop_mask, height=SIZE, width=SIZE, crops_coords=region, resize_mode="fill")
        filled = image_processor.resize(original.crop(region), SIZE, SIZE, resize_mode="fill")
        filled_mask = image_processor.resize(crop_mask.crop(region), SIZE, SIZE, resize_mode="fill")
        unet = load_model(UNet2DConditionModel, BASE / "unet")
        scheduler = diffusers.EulerDiscreteScheduler.from_config(config)
        steps, strength = 4, 0.75
        scheduler.set_timesteps(steps)
        timesteps = scheduler.timesteps[steps - min(int(steps * strength), steps):]
        generator = torch.Generator().manual_seed(SEED)
        image_latents = encode(init_image, generator)
        noise = torch.randn((1, 4, SIZE // factor, SIZE // factor), generator=generator)
        latents = scheduler.add_noise(image_latents, noise, timesteps[:1])
        small_mask = torch.nn.functional.interpolate(mask, size=(SIZE // factor, SIZE // factor))
        encode(init_image * (mask < 0.5), generator)  # the masked image's latents: drawn, unused by a 4-channel UNet
        step_latents = []
        for i, t in enumerate(timesteps):
            model_input = scheduler.scale_model_input(torch.cat([latents] * 2), t)
            noise_pred = unet(model_input, t, encoder_hidden_states=context,
                              added_cond_kwargs={"text_embeds": text_embeds, "time_ids": time_ids}).sample
            uncond, cond = noise_pred.chunk(2)
            latents = scheduler.step(uncond + GUIDANCE * (cond - uncond), t, latents, return_dict=False)[0]
            proper = image_latents
            if i < len(timesteps) - 1:
                proper = scheduler.add_noise(proper, noise, torch.tensor([timesteps[i + 1]]))
            latents = (1 - small_mask) * proper + small_mask * latents
            step_latents.append(latents.numpy().copy())
        decoded = vae.decode(latents / vae.config.scaling_factor).sample
        generated = image_processor.postprocess(decoded, output_type="pil")[0]
        final = image_processor.apply_overlay(crop_mask, original, generated, region)
        out["crop/region"] = np.array(region, dtype=np.float32)
        out["crop/filled_image"] = np.array(filled, dtype=np.float32)
        out["crop/filled_mask"] = np.array(filled_mask, dtype=np.float32)
        out["crop/generated"] = np.array(generated, dtype=np.float32)
        out["crop/step_latents"] = np.stack(step_latents)
        out["crop/image"] = np.array(final, dtype=np.float32)
        print("crop region", region, "fill:", filled.size)
        # The resize modes on shapes that need their bands and cuts: a wide and a tall crop "fill"ed to 64×64
        # (edge rows / columns stretched through an empty box), and apply_overlay into a wide box ("crop").
        for name, box in (("wide", (200, 100, 261, 147)), ("tall", (200, 100, 247, 161))):
            piece = coffee.crop(box)
            out[f"fill_{name}/input"] = np.array(piece, dtype=np.float32)
            out[f"fill_{name}/output"] = np.array(image_processor.resize(piece, SIZE, SIZE, resize_mode="fill"),
                                                  dtype=np.float32)
        wide_box = (2, 10, 50, 40)
        out["overlay_wide/box"] = np.array(wide_box, dtype=np.float32)
        out["overlay_wide/image"] = np.array(image_processor.apply_overlay(crop_mask, original, generated, wide_box),
                                             dtype=np.float32)
    write_safetensors(DATA / "expected" / "sdxl-tiny-inpaint.safetensors", out)


if __name__ == "__main__":
    main()
