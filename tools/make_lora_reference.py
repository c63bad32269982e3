#!/usr/bin/python3
"""Makes the LoRA fixtures for sdxl-tiny (tests/data/lora/*.safetensors, random low-rank pairs from
torch.manual_seed(0)) and tests/data/expected/sdxl-tiny-lora.safetensors:

  - kohya-sgm: kohya/webui keys in SGM names (lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q,
    ..._in_layers_2 LoCon convolutions, the down- and upsamplers), rank 4, alpha 2, every linear and
    convolution of the down, mid and up blocks;
  - peft: diffusers/PEFT keys (unet.<module>.lora_A.weight / lora_B.weight), rank 2, no alphas, the
    transformer blocks' linears;
  - kohya-te: lora_te1_* and lora_te2_* (self_attn q/k/v/out_proj, mlp fc1/fc2) with alpha 8 at rank 4,
    and two UNet modules in kohya's diffusers-style names (lora_unet_down_blocks_1_attentions_0_proj_in);
  - peft-te: text_encoder.* and text_encoder_2.* in PEFT names, rank 2.

The expected file holds
  - merged/<file>/<component>.<weight>: every weight each file changes, W + (alpha / rank) · up · down in
    float64 rounded to float32, the module found by diffusers' own key conversion
    (StableDiffusionXLLoraLoaderMixin.lora_state_dict's SGM remap and kohya conversion with the UNet's config, convert_unet_state_dict_to_peft,
    convert_state_dict_to_diffusers / _to_peft for the text encoders);
  - <case>/step_latents: StableDiffusionXLPipeline's loop (Euler, 2 steps, guidance 5.0, seed 7, the
    fixture's prompt embeddings) with the adapters applied the way diffusers' load_lora_weights applies
    them: PEFT's LoRA layers, y = base(x) + Σ scaling · lora_B(lora_A(x)) with scaling = weight · alpha / r
    (set_adapters' weights). Debian has no python3-peft, so the layers are forward hooks doing exactly
    that on the modules diffusers' conversion names. Cases: "kohya-sgm 1.0", "peft 0.8",
    "kohya-sgm 0.7 + peft 0.3".

Run with Debian's python3-torch and diffusers 0.30.3's source:
    PYTHONPATH=/path/to/diffusers/src:tools /usr/bin/python3 tools/make_lora_reference.py
"""
import json
import pathlib

import numpy as np

from diffusers_shim import read_safetensors, shim_missing_modules, write_safetensors
from sgm_names import sgm_prefixes, to_sgm

ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
FOLDER = DATA / "models" / "sdxl-tiny"
LORA = DATA / "lora"
SEED, STEPS, GUIDANCE = 7, 2, 5.0


def pair(torch, module, rank):
    w = module.weight
    if w.ndim == 4:
        down = torch.randn(rank, w.shape[1], w.shape[2], w.shape[3]) * 0.1
        up = torch.randn(w.shape[0], rank, 1, 1) * 0.1
    else:
        down, up = torch.randn(rank, w.shape[1]) * 0.1, torch.randn(w.shape[0], rank) * 0.1
    return down, up


def main():
    shim_missing_modules()
    import torch
    import torch.nn.functional as F
    from diffusers import EulerDiscreteScheduler, UNet2DConditionModel
    from diffusers.loaders.lora_conversion_utils import (_convert_non_diffusers_lora_to_diffusers,
                                                         _maybe_map_sgm_blocks_to_diffusers)
    from diffusers.utils.state_dict_utils import (convert_state_dict_to_diffusers, convert_state_dict_to_peft,
                                                  convert_unet_state_dict_to_peft)

    config = json.loads((FOLDER / "unet" / "config.json").read_text())
    unet = UNet2DConditionModel(**{k: v for k, v in config.items() if not k.startswith("_")})
    unet_weights = read_safetensors(FOLDER / "unet" / "diffusion_pytorch_model.safetensors")
    unet.load_state_dict({k: torch.from_numpy(v.astype(np.float32)) for k, v in unet_weights.items()})
    unet.eval()
    te_weights = {"text_encoder": read_safetensors(FOLDER / "text_encoder" / "model.safetensors"),
                  "text_encoder_2": read_safetensors(FOLDER / "text_encoder_2" / "model.safetensors")}

    torch.manual_seed(0)
    LORA.mkdir(parents=True, exist_ok=True)
    prefixes = sgm_prefixes(config)
    layers = [(name, m) for name, m in unet.named_modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]
    files = {}
    # kohya, SGM names: every linear and convolution inside the down, mid and up blocks.
    sd = {}
    for name, m in layers:
        if not name.startswith(("down_blocks.", "mid_block.", "up_blocks.")):
            continue
        key = "lora_unet_" + to_sgm(name, prefixes).replace(".", "_")
        sd[key + ".lora_down.weight"], sd[key + ".lora_up.weight"] = pair(torch, m, 4)
        sd[key + ".alpha"] = torch.tensor(2.0)
    files["kohya-sgm"] = sd
    # PEFT names: the transformer blocks' linears.
    sd = {}
    for name, m in layers:
        if ".attentions." in name and isinstance(m, torch.nn.Linear):
            sd[f"unet.{name}.lora_A.weight"], sd[f"unet.{name}.lora_B.weight"] = pair(torch, m, 2)
    files["peft"] = sd

    class Shape:  # what pair() reads of a module: its weight's shape
        def __init__(self, array):
            self.weight = torch.empty(array.shape)

    def te_modules(component):
        names = sorted(k[:-7] for k in te_weights[component] if k.endswith(".weight") and
                       any(p in k for p in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                            "self_attn.out_proj", "mlp.fc1", "mlp.fc2")))
        return [(n, Shape(te_weights[component][n + ".weight"])) for n in names]

    sd = {}
    for component, prefix in (("text_encoder", "lora_te1_"), ("text_encoder_2", "lora_te2_")):
        for name, m in te_modules(component):
            key = prefix + name.replace(".", "_")
            sd[key + ".lora_down.weight"], sd[key + ".lora_up.weight"] = pair(torch, m, 4)
            sd[key + ".alpha"] = torch.tensor(8.0)
    for name in ("down_blocks.1.attentions.0.proj_in", "up_blocks.0.resnets.1.conv1"):
        key = "lora_unet_" + name.replace(".", "_")
        sd[key + ".lora_down.weight"], sd[key + ".lora_up.weight"] = pair(torch, unet.get_submodule(name), 4)
        sd[key + ".alpha"] = torch.tensor(8.0)
    files["kohya-te"] = sd
    sd = {}
    for component in ("text_encoder", "text_encoder_2"):
        for name, m in te_modules(component):
            sd[f"{component}.{name}.lora_A.weight"], sd[f"{component}.{name}.lora_B.weight"] = pair(torch, m, 2)
    files["peft-te"] = sd

    for stem, sd in files.items():
        write_safetensors(LORA / f"sdxl-tiny-{stem}.safetensors", {k: v.numpy() for k, v in sd.items()})

    # diffusers' reading of each file: component → {module: (down, up, alpha)}.
    def adapters(stem):
        # StableDiffusionXLLoraLoaderMixin.lora_state_dict's body past its file fetch (the shim stands in for
        # huggingface_hub, whose decorator wraps the method): kohya keys are remapped by diffusers' functions.
        state = {k: torch.from_numpy(v.copy()) for k, v in read_safetensors(LORA / f"sdxl-tiny-{stem}.safetensors").items()}
        alphas = None
        if all(k.startswith(("lora_te_", "lora_unet_", "lora_te1_", "lora_te2_")) for k in state):
            state = _maybe_map_sgm_blocks_to_diffusers(state, unet.config)
            state, alphas = _convert_non_diffusers_lora_to_diffusers(state)
        out = {}
        for component in ("unet", "text_encoder", "text_encoder_2"):
            part = {k[len(component) + 1:]: v for k, v in state.items() if k.split(".")[0] == component}
            if not part:
                continue
            a = {k[len(component) + 1:]: v for k, v in (alphas or {}).items() if k.split(".")[0] == component}
            peft = convert_unet_state_dict_to_peft(part) if component == "unet" else \
                convert_state_dict_to_peft(convert_state_dict_to_diffusers(part))
            ranks = {k: v.shape[1] for k, v in peft.items() if "lora_B" in k}
            assert len(set(ranks.values())) == 1 and len(set(a.values())) <= 1  # one r, one alpha: no patterns
            r = next(iter(ranks.values()))
            alpha = next(iter(a.values())) if a else r  # get_peft_kwargs: lora_alpha = r without network alphas
            out[component] = {k[:-len(".lora_A.weight")]: (peft[k], peft[k.replace("lora_A", "lora_B")], alpha / r)
                              for k in peft if k.endswith(".lora_A.weight")}
        return out

    expected = {}
    readings = {stem: adapters(stem) for stem in files}
    for stem, reading in readings.items():
        for component, modules in reading.items():
            weights = unet_weights if component == "unet" else te_weights[component]
            for module, (down, up, scale) in modules.items():
                w = weights[module + ".weight"].astype(np.float64)
                delta = up.double().reshape(up.shape[0], -1).numpy() @ down.double().reshape(down.shape[0], -1).numpy()
                expected[f"merged/{stem}/{component}.{module}.weight"] = (w + scale * delta.reshape(w.shape)).astype(np.float32)
        print(stem, {c: len(m) for c, m in reading.items()}, "modules")

    # The pipeline with PEFT's LoRA layers as hooks: y + Σ weight · scaling · B(A(x)).
    def apply(active):
        handles = []
        by_module = {}
        for stem, weight in active:
            for module, (down, up, scale) in readings[stem]["unet"].items():
                by_module.setdefault(module, []).append((down, up, weight * scale))
        for module, terms in by_module.items():
            m = unet.get_submodule(module)

            def hook(mod, inputs, output, terms=terms):
                x = inputs[0]
                for down, up, s in terms:
                    if isinstance(mod, torch.nn.Conv2d):
                        h = F.conv2d(x, down, stride=mod.stride, padding=mod.padding, dilation=mod.dilation)
                        output = output + s * F.conv2d(h, up)
                    else:
                        output = output + s * F.linear(F.linear(x, down), up)
                return output
            handles.append(m.register_forward_hook(hook))
        return handles

    e = {k: torch.from_numpy(v) for k, v in read_safetensors(DATA / "expected" / "sdxl-tiny.safetensors").items()}
    context = torch.cat([e["negative_prompt_embeds"], e["prompt_embeds"]])
    text_embeds = torch.cat([e["negative_pooled_prompt_embeds"], e["pooled_prompt_embeds"]])
    time_ids = torch.cat([e["add_time_ids"], e["add_time_ids"]])
    base = json.loads((FOLDER / "scheduler" / "scheduler_config.json").read_text())
    for case, active in (("kohya-sgm 1.0", [("kohya-sgm", 1.0)]), ("peft 0.8", [("peft", 0.8)]),
                         ("kohya-sgm 0.7 + peft 0.3", [("kohya-sgm", 0.7), ("peft", 0.3)])):
        handles = apply(active)
        scheduler = EulerDiscreteScheduler.from_config(base)
        scheduler.set_timesteps(STEPS)
        generator = torch.Generator().manual_seed(SEED)
        latents = torch.randn((1, 4, 32, 32), generator=generator) * scheduler.init_noise_sigma
        steps = []
        with torch.no_grad():
            for t in scheduler.timesteps:
                model_input = scheduler.scale_model_input(torch.cat([latents] * 2), t)
                noise = unet(model_input, t, encoder_hidden_states=context,
                             added_cond_kwargs={"text_embeds": text_embeds, "time_ids": time_ids}).sample
                uncond, cond = noise.chunk(2)
                latents = scheduler.step(uncond + GUIDANCE * (cond - uncond), t, latents, return_dict=False)[0]
                steps.append(latents.numpy().copy())
        for h in handles:
            h.remove()
        expected[case + "/step_latents"] = np.stack(steps)
        print(case, "max |latents|", float(np.abs(steps[-1]).max()))
    write_safetensors(DATA / "expected" / "sdxl-tiny-lora.safetensors", expected)


if __name__ == "__main__":
    main()
