#!/usr/bin/python3
"""Writes tests/data/schedulers/<class>.json: diffusers 0.30.3's schedulers (Debian's python3-torch 1.13) on
several configs each — SDXL's own settings, the class defaults, and the spacings, sigma schedules,
prediction types and solver options the class has —: timesteps (and sigmas) after set_timesteps(1, 4, 25,
50), init_noise_sigma, a whole 4-step and 25-step loop (the UNet input scale_model_input gives, then step() on
random model outputs — the initial sample and the outputs are torch.randn from a CPU generator seeded with
the step count, which the test draws again —; stochastic samplers draw their noise from a CPU torch.Generator seeded with
`noise_seed`), and add_noise at the second step. Floats are the exact values of the float32 results.
Run: PYTHONPATH=/path/to/diffusers-v0.30.3/src:tools /usr/bin/python3 tests/data/generator/make_scheduler_cases.py"""
import inspect
import json
import os

import numpy as np
import torch
from diffusers_shim import shim_missing_modules

shim_missing_modules()
import diffusers  # noqa: E402

SDXL = {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012, "steps_offset": 1,
        "timestep_spacing": "leading", "num_train_timesteps": 1000}
SDXL_DDIM = {**SDXL, "clip_sample": False, "set_alpha_to_one": False}
CLASSES = {
    "DDIMScheduler": {
        "sdxl": SDXL_DDIM,
        "defaults": {},
        "trailing_v_zero_snr": {**SDXL_DDIM, "timestep_spacing": "trailing", "prediction_type": "v_prediction",
                                "rescale_betas_zero_snr": True, "set_alpha_to_one": True},
        "linspace_sample_cosine": {"beta_schedule": "squaredcos_cap_v2", "timestep_spacing": "linspace",
                                   "prediction_type": "sample", "clip_sample": True, "clip_sample_range": 0.5},
    },
    "EulerDiscreteScheduler": {
        "sdxl": SDXL,
        "defaults": {},
        "karras_trailing_v": {**SDXL, "use_karras_sigmas": True, "timestep_spacing": "trailing",
                              "prediction_type": "v_prediction"},
        "linspace_sample_cosine_sigma_min": {"beta_schedule": "squaredcos_cap_v2", "prediction_type": "sample",
                                             "final_sigmas_type": "sigma_min"},
    },
    "EulerAncestralDiscreteScheduler": {
        "sdxl": SDXL,
        "defaults": {},
        "trailing_v_zero_snr": {**SDXL, "timestep_spacing": "trailing", "prediction_type": "v_prediction",
                                "rescale_betas_zero_snr": True},
        "leading_linear_v": {"prediction_type": "v_prediction", "timestep_spacing": "leading", "steps_offset": 1},
    },
    "DPMSolverMultistepScheduler": {
        "sdxl_2m": SDXL,
        "defaults": {},
        "sdxl_2m_karras": {**SDXL, "use_karras_sigmas": True},
        "sdxl_2m_sde_karras": {**SDXL, "algorithm_type": "sde-dpmsolver++", "use_karras_sigmas": True},
        "order3_heun_trailing_v": {"solver_order": 3, "solver_type": "heun", "timestep_spacing": "trailing",
                                   "prediction_type": "v_prediction"},
        "dpmsolver_sigma_min_sample_cosine": {"algorithm_type": "dpmsolver", "final_sigmas_type": "sigma_min",
                                              "prediction_type": "sample", "lower_order_final": False,
                                              "beta_schedule": "squaredcos_cap_v2"},
        "sde_dpmsolver_heun_euler_final": {"algorithm_type": "sde-dpmsolver", "final_sigmas_type": "sigma_min",
                                           "solver_type": "heun", "euler_at_final": True},
        "lu_lambdas_order1": {**SDXL, "use_lu_lambdas": True, "solver_order": 1},
        "lambda_clipped_zero_snr": {**SDXL, "lambda_min_clipped": -5.1, "rescale_betas_zero_snr": True,
                                    "timestep_spacing": "linspace", "prediction_type": "v_prediction"},
    },
    "HeunDiscreteScheduler": {
        "sdxl": SDXL,
        "defaults": {},
        "karras_v": {**SDXL, "use_karras_sigmas": True, "prediction_type": "v_prediction"},
        "trailing_sample_clip_cosine": {"timestep_spacing": "trailing", "prediction_type": "sample",
                                        "clip_sample": True, "clip_sample_range": 0.8,
                                        "beta_schedule": "squaredcos_cap_v2"},
    },
    "UniPCMultistepScheduler": {
        "sdxl": SDXL,
        "defaults": {},
        "sdxl_order3": {**SDXL, "solver_order": 3},
        "order3_bh1_karras_v_sigma_min": {"solver_order": 3, "solver_type": "bh1", "use_karras_sigmas": True,
                                          "final_sigmas_type": "sigma_min", "prediction_type": "v_prediction"},
        "noise_space_sample_trailing": {"predict_x0": False, "prediction_type": "sample", "timestep_spacing": "trailing",
                                        "final_sigmas_type": "sigma_min", "disable_corrector": [0, 2],
                                        "lower_order_final": False},
    },
    "DPMSolverSinglestepScheduler": {
        "defaults": {},
        "sdxl": SDXL,
        "karras_order3_heun_sigma_min": {**SDXL, "use_karras_sigmas": True, "solver_order": 3, "solver_type": "heun",
                                         "final_sigmas_type": "sigma_min", "lower_order_final": False},
        "order3_midpoint_v": {"solver_order": 3, "prediction_type": "v_prediction", "lower_order_final": True},
        "sde_sample": {"algorithm_type": "sde-dpmsolver++", "prediction_type": "sample"},
        "dpmsolver_heun_sigma_min_clipped": {"algorithm_type": "dpmsolver", "solver_type": "heun",
                                             "final_sigmas_type": "sigma_min", "lambda_min_clipped": -5.1,
                                             "beta_schedule": "squaredcos_cap_v2"},
    },
    "LMSDiscreteScheduler": {
        "defaults": {},
        "sdxl": SDXL,
        "karras_v": {**SDXL, "use_karras_sigmas": True, "prediction_type": "v_prediction"},
        "trailing_sample_cosine": {"timestep_spacing": "trailing", "prediction_type": "sample",
                                   "beta_schedule": "squaredcos_cap_v2"},
    },
    "LCMScheduler": {
        "defaults": {},
        "sdxl_leading": SDXL,
        "v_clip_linear_original_25": {"prediction_type": "v_prediction", "clip_sample": True, "clip_sample_range": 0.7,
                                      "beta_schedule": "linear", "original_inference_steps": 25,
                                      "set_alpha_to_one": False, "timestep_scaling": 5.0},
        "sample_zero_snr": {"prediction_type": "sample", "rescale_betas_zero_snr": True},
    },
    "TCDScheduler": {
        "defaults": {},
        "sdxl_leading": SDXL,
        "v_linear_original_25": {"prediction_type": "v_prediction", "beta_schedule": "linear",
                                 "original_inference_steps": 25},
        "sample_zero_snr": {"prediction_type": "sample", "rescale_betas_zero_snr": True},
    },
}
SHAPE = (1, 4, 5, 5)  # 100 values: not a multiple of torch's 16-value normal blocks


def floats(t):  # the shortest decimals that read back as the same float32 values
    return [float(repr(np.float32(x))) for x in torch.as_tensor(t, dtype=torch.float32).flatten().tolist()]


def doubles(t):
    return [float(x) for x in torch.as_tensor(t).flatten().tolist()]


def make(cls, config, steps):
    s = cls.from_config(config)
    s.set_timesteps(steps)
    return s


ETA = {"TCDScheduler": 0.3}  # step(eta=): TCD's authors' value; DDIM runs with 0


def step_kwargs(s, generator):
    params = inspect.signature(s.step).parameters
    kwargs = {"generator": generator} if "generator" in params else {}
    if "eta" in params:
        kwargs["eta"] = ETA.get(type(s).__name__, 0.0)
    return kwargs


def case_of(cls, name, config, index):
    case = {"name": name, "config": {"_class_name": cls.__name__, **config}, "timesteps": {}, "sigmas": {},
            "init_noise_sigma": {}, "loops": {}}
    for steps in (1, 4, 25, 50):
        try:
            s = make(cls, config, steps)
        except ValueError:  # more steps than LCM's distillation schedule: refused there, and by mmx
            continue
        case["timesteps"][str(steps)] = doubles(s.timesteps.to(torch.float64))
        if isinstance(getattr(s, "sigmas", None), torch.Tensor):
            case["sigmas"][str(steps)] = floats(s.sigmas)
        case["init_noise_sigma"][str(steps)] = float(s.init_noise_sigma)
    for steps in (4, 25):
        s = make(cls, config, steps)
        g = torch.Generator().manual_seed(steps)
        noise_seed = 1000 * index + steps
        noise = torch.Generator().manual_seed(noise_seed)
        sample = torch.randn(SHAPE, generator=g) * s.init_noise_sigma
        loop = {"noise_seed": noise_seed, "eta": ETA.get(cls.__name__, 0.0), "model_inputs": [], "prev_samples": []}
        for t in s.timesteps:
            model_input = s.scale_model_input(sample, t)
            out = torch.randn(SHAPE, generator=g)
            sample = s.step(out, t, sample, **step_kwargs(s, noise)).prev_sample
            loop["model_inputs"].append(floats(model_input))
            loop["prev_samples"].append(floats(sample))
        case["loops"][str(steps)] = loop
    s = make(cls, config, 4)
    if hasattr(s, "set_begin_index"):
        s.set_begin_index(1)  # as the image-to-image pipelines do
    g = torch.Generator().manual_seed(99)
    original, noise = torch.randn(SHAPE, generator=g), torch.randn(SHAPE, generator=g)
    case["add_noise"] = {"step_index": 1, "original": floats(original), "noise": floats(noise),
                         "noisy": floats(s.add_noise(original, noise, s.timesteps[1:2]))}
    return case


out_dir = os.path.join(os.path.dirname(__file__), "..", "schedulers")
for class_name, configs in CLASSES.items():
    cls = getattr(diffusers, class_name)
    cases = [case_of(cls, name, config, i) for i, (name, config) in enumerate(configs.items())]
    path = os.path.join(out_dir, class_name + ".json")
    with open(path, "w") as f:
        json.dump({"source": f"diffusers 0.30.3 {class_name}, torch {torch.__version__}", "shape": list(SHAPE),
                   "cases": cases}, f)
    print("wrote", path)
