#!/usr/bin/python3
"""Makes tests/data/models/sdxl-tiny-refiner (a refiner in stabilityai/stable-diffusion-xl-refiner-1.0's layout:
StableDiffusionXLImg2ImgPipeline, text_encoder_2 and tokenizer_2 only, requires_aesthetics_score, no forced zero
negatives; the text encoder, tokenizer, VAE and scheduler of sdxl-tiny, a UNet with random weights from
torch.manual_seed(0) whose cross-attention takes text_encoder_2's 32 features and whose added embedding takes
5 time ids) and tests/data/expected/sdxl-tiny-refiner.safetensors: diffusers' loops, guidance 5.0, seed 11:
  - "handoff": the base (sdxl-tiny) for 10 Euler steps with denoising_end 0.8 (output_type latent), then the
    refiner from those latents with denoising_start 0.8 (aesthetic_score 6.0, negative 2.5): base_latents,
    step_latents;
  - "img2img": the refiner alone from coffee.png at 64×64, strength 0.3 of 10 steps: step_latents.
The prompt embeddings are the fixture's (expected/sdxl-tiny.safetensors, diffusers' encode_prompt): the
refiner's are text_encoder_2's part of them, its negative the encoded "" (force_zeros_for_empty_prompt false).

Run with Debian's python3-torch and python3-pil, and diffusers 0.30.3's source:
    PYTHONPATH=/path/to/diffusers/src /usr/bin/python3 tools/make_refiner_reference.py
"""
import json
import pathlib
import shutil

import numpy as np

from diffusers_shim import load_model, read_safetensors, shim_missing_modules, write_safetensors

ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
BASE = DATA / "models" / "sdxl-tiny"
REFINER = DATA / "models" / "sdxl-tiny-refiner"
SEED, GUIDANCE, STEPS, HANDOFF, SIZE = 11, 5.0, 10, 0.8, 64


def make_folder(torch, UNet2DConditionModel):
    if REFINER.exists():
        shutil.rmtree(REFINER)
    REFINER.mkdir(parents=True)
    for component in ("text_encoder_2", "tokenizer_2", "vae", "scheduler"):
        shutil.copytree(BASE / component, REFINER / component, symlinks=False)
    config = json.loads((BASE / "unet" / "config.json").read_text())
    config["cross_attention_dim"] = 32  # text_encoder_2's hidden size alone
    config["projection_class_embeddings_input_dim"] = 5 * config["addition_time_embed_dim"] + 32
    (REFINER / "unet").mkdir()
    (REFINER / "unet" / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    torch.manual_seed(0)
    unet = UNet2DConditionModel(**{k: v for k, v in config.items() if not k.startswith("_")})
    write_safetensors(REFINER / "unet" / "diffusion_pytorch_model.safetensors",
                      {k: v.detach().numpy() for k, v in unet.state_dict().items()})
    index = json.loads((BASE / "model_index.json").read_text())
    index.update({"_class_name": "StableDiffusionXLImg2ImgPipeline", "force_zeros_for_empty_prompt": False,
                  "requires_aesthetics_score": True, "text_encoder": [None, None], "tokenizer": [None, None]})
    (REFINER / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")
    return unet.eval()


def main():
    shim_missing_modules()
    import PIL.Image
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel
    from diffusers.image_processor import VaeImageProcessor


    refiner_unet = make_folder(torch, UNet2DConditionModel)
    base_unet, vae = load_model(UNet2DConditionModel, BASE / "unet"), load_model(AutoencoderKL, BASE / "vae")
    e = {k: torch.from_numpy(v.copy()) for k, v in read_safetensors(DATA / "expected" / "sdxl-tiny.safetensors").items()}
    base_cond = (torch.cat([e["negative_prompt_embeds"], e["prompt_embeds"]]),
                 torch.cat([e["negative_pooled_prompt_embeds"], e["pooled_prompt_embeds"]]),
                 torch.tensor([[SIZE, SIZE, 0, 0, SIZE, SIZE]] * 2, dtype=torch.float32))
    refiner_cond = (torch.cat([e["negative_prompt_embeds_explicit_empty"][..., 32:], e["text_encoder_2_hidden_states_penultimate"]]),
                    torch.cat([e["negative_pooled_prompt_embeds_explicit_empty"], e["text_encoder_2_text_embeds"]]),
                    torch.tensor([[SIZE, SIZE, 0, 0, 2.5], [SIZE, SIZE, 0, 0, 6.0]], dtype=torch.float32))
    config = json.loads((BASE / "scheduler" / "scheduler_config.json").read_text())
    n_train = config["num_train_timesteps"]

    def run(unet, cond, scheduler, timesteps, latents):
        out = []
        for t in timesteps:
            model_input = scheduler.scale_model_input(torch.cat([latents] * 2), t)
            noise = unet(model_input, t, encoder_hidden_states=cond[0],
                         added_cond_kwargs={"text_embeds": cond[1], "time_ids": cond[2]}).sample
            uncond, text = noise.chunk(2)
            latents = scheduler.step(uncond + GUIDANCE * (text - uncond), t, latents, return_dict=False)[0]
            out.append(latents.numpy().copy())
        return latents, np.stack(out)

    result = {}
    with torch.no_grad():
        # The base with denoising_end: the timesteps at or above the cut-off.
        scheduler = EulerDiscreteScheduler.from_config(config)
        scheduler.set_timesteps(STEPS)
        generator = torch.Generator().manual_seed(SEED)
        latents = torch.randn((1, 4, 32, 32), generator=generator) * scheduler.init_noise_sigma
        cutoff = int(round(n_train - HANDOFF * n_train))
        timesteps = [t for t in scheduler.timesteps if t >= cutoff]
        latents, _ = run(base_unet, base_cond, scheduler, timesteps, latents)
        result["handoff/base_latents"] = latents.numpy().copy()
        # The refiner with denoising_start: get_timesteps keeps the timesteps below the cut-off.
        scheduler = EulerDiscreteScheduler.from_config(config)
        scheduler.set_timesteps(STEPS)
        kept = int((scheduler.timesteps < cutoff).sum().item())
        _, steps = run(refiner_unet, refiner_cond, scheduler, scheduler.timesteps[-kept:], latents)
        result["handoff/step_latents"] = steps
        # The refiner alone as image to image.
        scheduler = EulerDiscreteScheduler.from_config(config)
        scheduler.set_timesteps(STEPS)
        t_start = STEPS - min(int(STEPS * 0.3), STEPS)
        timesteps = scheduler.timesteps[t_start:]
        generator = torch.Generator().manual_seed(SEED)
        processor = VaeImageProcessor(vae_scale_factor=2 ** (len(vae.config.block_out_channels) - 1))
        x = processor.preprocess(PIL.Image.open(DATA / "images" / "coffee.png").convert("RGB"), height=SIZE, width=SIZE)
        latents = vae.encode(x).latent_dist.sample(generator) * vae.config.scaling_factor
        latents = scheduler.add_noise(latents, torch.randn(latents.shape, generator=generator), timesteps[:1])
        _, steps = run(refiner_unet, refiner_cond, scheduler, timesteps, latents)
        result["img2img/step_latents"] = steps
    write_safetensors(DATA / "expected" / "sdxl-tiny-refiner.safetensors", result)
    print({k: v.shape for k, v in result.items()})


if __name__ == "__main__":
    main()
