"""Inference speed: frames per second of a transformer variant at a frame size, after warm-up."""

from __future__ import annotations

import logging
import math
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .devices import configure_torch, cpu_name, default_variant, resolve_device
from .errors import InvalidInput
from .stylizer import Stylizer
from .transformer_net import VARIANTS, build_transformer

log = logging.getLogger(__name__)

MIN_REPEAT_S = 0.2  # each repeat runs enough batches to last about this long


@dataclass(frozen=True)
class BenchConfig:
    """One benchmark: device, variant (or a style folder's weights), frame size, batch, repeats."""

    device: str = "auto"
    variant: str | None = None  # default: full on CUDA, lite on CPU
    width: int = 320
    height: int = 240
    batch_size: int = 1
    repeats: int = 5
    warmup: int = 2
    style: Path | None = None  # a style folder; default: randomly initialised weights
    threads: int | None = None  # CPU threads (default: all cores)
    compile: bool | None = None  # torch.compile (default: on CUDA only); warm-up compiles
    seed: int = 0

    def __post_init__(self) -> None:
        if min(self.width, self.height) < 8:
            raise InvalidInput(f"bench size must be at least 8x8, got {self.width}x{self.height}")
        if self.batch_size < 1 or self.repeats < 1 or self.warmup < 0:
            raise InvalidInput("batch size and repeats must be at least 1, warm-up at least 0")
        if self.variant is not None and self.variant not in VARIANTS:
            raise InvalidInput(f"unknown variant {self.variant!r}; choose {', '.join(VARIANTS)}")


def make_stylizer(config: BenchConfig) -> Stylizer:
    """The style's weights if one is given, else a seeded random transformer (same speed)."""
    device = resolve_device(config.device)
    if device.type == "cpu":
        configure_torch(config.threads)
    mode = None if config.compile is None else ("inline" if config.compile else "off")
    if config.style is not None:
        return Stylizer.from_style(config.style, config.variant, device, compile=mode)
    variant = config.variant or default_variant(device)
    torch.manual_seed(config.seed)
    model = build_transformer(variant)
    return Stylizer(model, device, compile=mode, name="random", variant=variant)


def run_bench(config: BenchConfig) -> dict[str, Any]:
    """Time the stylizer: warm-up, then the median of `repeats` timed runs, as fps and ms."""
    stylizer = make_stylizer(config)
    rng = np.random.default_rng(config.seed)
    frames = rng.integers(0, 256, (config.batch_size, config.height, config.width, 3), np.uint8)
    warm_s = [_timed(stylizer, frames, 1) for _ in range(config.warmup)]
    calls = max(1, math.ceil(MIN_REPEAT_S / max(min(warm_s, default=MIN_REPEAT_S), 1e-6)))
    per_call = [_timed(stylizer, frames, calls) / calls for _ in range(config.repeats)]
    ms = statistics.median(per_call) * 1000.0
    result = {
        "fps": config.batch_size * 1000.0 / ms,
        "ms_per_batch": ms,
        "device": str(stylizer.device),
        "variant": stylizer.variant,
        "size": f"{config.width}x{config.height}",
        "batch_size": config.batch_size,
        "repeats": config.repeats,
        "calls_per_repeat": calls,
        "ms_per_batch_all": [round(s * 1000.0, 3) for s in per_call],
        "half": stylizer.half,
        "compiled": stylizer.model is not stylizer.eager,
        "threads": torch.get_num_threads() if stylizer.device.type == "cpu" else None,
        "style": stylizer.name,
        "torch": torch.__version__,
        "machine": describe_machine(stylizer.device),
    }
    log.info(
        "%s %s %s: %.1f fps", result["device"], result["variant"], result["size"], result["fps"]
    )
    return result


def _timed(stylizer: Stylizer, frames: np.ndarray, calls: int) -> float:
    """Seconds for `calls` stylizer calls (each returns on the CPU, so CUDA work is included)."""
    start = time.perf_counter()
    for _ in range(calls):
        stylizer(frames)
    return time.perf_counter() - start


def describe_machine(device: torch.device) -> str:
    """The GPU's name on CUDA, else the CPU model and core count."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_name()} ({torch.get_num_threads()} threads)"
