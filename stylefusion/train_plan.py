"""How long a training run will take, said before it starts: its kind, steps and seconds.

A run is one of three kinds: a new style's norms fitted to a frozen shared backbone ("norms",
the default where a models dir has one), the same with the backbone's convolutions trained too
("fine_tune"), or a network of its own ("single"). Its step rate is timed on this device
(style_fit.estimate_step_seconds), so the estimate holds for this machine and its load.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch

from .architecture import VARIANTS, TransformerConfig
from .devices import resolve_device
from .style_fit import check_budget, estimate_step_seconds, find_backbone
from .train_config import FIT_STEPS, MIN_FIT_STEPS, TrainConfig

# Start-up and finish of a job besides its steps, measured on the 2-core EPYC (one thread, load
# 1.5-4): 30-35 s from submit to the first step (the worker's spawn and imports, the nearest of
# six styles' paintings by their Grams, the new painting's Grams, the photos); on a GPU a guess
SETUP_SECONDS = {"cpu": 35.0, "cuda": 8.0}
# A new style without a budget is live within this on each kind of device (issue 18): its steps
# are what fits at the timed rate, at most FIT_STEPS, at least MIN_FIT_STEPS
LIVE_WITHIN_SECONDS = {"cpu": 300.0, "cuda": 15.0}
RATE_MARGIN = 0.9  # the timed rate is the best of two steps: real ones run a little slower
# A network of its own on a CPU: 256 px crops of batch 8 take 29 s a step there (2000 steps:
# 16 hours); at 128 px, batch 4, a step takes ~3 s and the shipped styles' shortest run was
# 1.5k steps (Starry Night, Sunflower)
CPU_SINGLE_STYLE = {"size": 128, "batch_size": 4, "steps": 1500}


@dataclass(frozen=True)
class TrainEstimate:
    """What a run will do and about how long it takes on this device."""

    mode: str  # norms | fine_tune | single
    backbone: str | None
    variant: str
    size: int
    batch_size: int
    steps: int  # for a seconds budget: the steps that fit in it at the timed rate
    seconds: float  # expected wall time, start-up included
    step_seconds: float
    setup_seconds: float
    minimum_steps: int | None  # the fewest steps accepted (norm fits only)
    device: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(self).items()}


def run_mode(config: TrainConfig) -> str:
    """The kind of run a config asks for."""
    if config.backbone is None:
        return "single"
    return "fine_tune" if config.fine_tune else "norms"


def single_style_defaults(device: torch.device) -> dict[str, int]:
    """Crop size, batch and steps of a network of its own unless asked: today's (256 px,
    batch 8, 2000 steps) on a GPU, CPU_SINGLE_STYLE on a CPU."""
    if device.type == "cuda":
        return {
            "size": TrainConfig.size,
            "batch_size": TrainConfig.batch_size,
            "steps": 2000,
        }
    return dict(CPU_SINGLE_STYLE)


def timing_key(config: TrainConfig) -> tuple[str, str, str | None, str, int, int]:
    """What a step's time depends on: device, variant, backbone, kind of run, size, batch."""
    device = str(resolve_device(config.device))
    mode = run_mode(config)
    return (device, config.variant, config.backbone, mode, config.size, config.batch_size)


def architecture_of(config: TrainConfig) -> TransformerConfig:
    """The network the run trains: its backbone's, the override, or the variant's."""
    if config.backbone is not None:
        return find_backbone(config.output_dir, config.backbone, config.variant).config
    return config.architecture or VARIANTS[config.variant]


def measure_step_seconds(config: TrainConfig) -> float:
    """Seconds a step of this run takes on its device (a few seconds of timing)."""
    norms_only = run_mode(config) == "norms"
    return estimate_step_seconds(config, architecture_of(config), norms_only)


def fitting_steps(config: TrainConfig, step_seconds: float) -> int:
    """The default step budget of a new style on this device: as many steps as leave it live
    within LIVE_WITHIN_SECONDS at the timed rate, from MIN_FIT_STEPS to FIT_STEPS. On the
    loaded 2-core box two 120-step jobs took 5.7 and 7.4 minutes (2.6 and 3.4 s a step at
    nice 19 beside a training, a test suite and the server's first-start builds; 224
    CPU-seconds each, under 4 minutes on a free core)."""
    device = resolve_device(config.device).type
    target = LIVE_WITHIN_SECONDS.get(device, LIVE_WITHIN_SECONDS["cpu"])
    setup = SETUP_SECONDS.get(device, SETUP_SECONDS["cpu"])
    fits = math.floor((target - setup) * RATE_MARGIN / max(step_seconds, 1e-6))
    return max(MIN_FIT_STEPS, min(FIT_STEPS, fits))


def estimate_run(config: TrainConfig, step_seconds: float) -> TrainEstimate:
    """The run's steps and expected seconds at a timed rate; BudgetTooSmall (naming the
    minimum) for a norm fit whose budget is below what converges."""
    mode = run_mode(config)
    if mode != "single":
        check_budget(config, step_seconds)
    device = resolve_device(config.device)
    setup = SETUP_SECONDS.get(device.type, SETUP_SECONDS["cpu"])
    total = config.total_steps
    if total is None:  # a seconds budget: the steps that fit in it
        seconds = float(config.seconds or 0.0)
        total = max(1, math.floor(seconds / step_seconds))
    else:
        seconds = total * step_seconds
    return TrainEstimate(
        mode=mode,
        backbone=config.backbone,
        variant=config.variant,
        size=config.size,
        batch_size=config.batch_size,
        steps=total,
        seconds=seconds + setup,
        step_seconds=step_seconds,
        setup_seconds=setup,
        minimum_steps=MIN_FIT_STEPS if mode != "single" else None,
        device=str(device),
    )
