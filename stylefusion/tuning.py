"""How inference runs fastest on a GPU: its half dtype and torch.compile mode, as measured.

`bench/gpu.sh` times every combination on a GPU and writes the winner, keyed by the GPU's
name, to a JSON file; copied to stylefusion/data/cuda_tuning.json it is what every Stylizer on
that kind of GPU uses. A GPU missing from the file gets the safe default (fp16, plain compile).
"""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from .errors import InvalidInput
from .fsutil import atomic_write_text

log = logging.getLogger(__name__)

TUNING_FILE = Path(__file__).resolve().parent / "data" / "cuda_tuning.json"
HALF_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16}
# "eager": no torch.compile; the others are torch.compile's modes ("reduce-overhead" adds
# CUDA graphs, "max-autotune" benchmarks kernel choices while compiling)
# "frozen": inductor's freezing (weights folded in as constants, oneDNN-prepacked convolutions),
# the fastest bf16 CPU setting measured (bench/cpu_model.py)
# "package": CPU only, an AOTInductor package per shape with freezing, in the model's dtype,
# built in a child process (stylefusion.packages: no tracing beside a serving thread)
# "int8": CPU only, static int8 quantization then a package (stylefusion.quantized); the model's
# input stays fp32, so its Stylizer runs with half=False
MODES = ("eager", "default", "max-autotune", "reduce-overhead", "frozen", "package", "int8")


@dataclass(frozen=True)
class Tuning:
    """One way to run CUDA inference: the half dtype and how the model is compiled."""

    dtype: str = "float16"
    mode: str = "default"

    def __post_init__(self) -> None:
        if self.dtype not in HALF_DTYPES:
            raise InvalidInput(
                f"tuning dtype must be one of {tuple(HALF_DTYPES)}, not {self.dtype!r}"
            )
        if self.mode not in MODES:
            raise InvalidInput(f"tuning mode must be one of {MODES}, not {self.mode!r}")

    @property
    def torch_dtype(self) -> torch.dtype:
        """The half dtype as a torch dtype."""
        return HALF_DTYPES[self.dtype]

    @property
    def compiled(self) -> bool:
        """Whether the model goes through torch.compile."""
        return self.mode != "eager"


def read_tunings(path: Path = TUNING_FILE) -> dict[str, Tuning]:
    """GPU name -> Tuning from a tuning file; empty (with a warning) if it is missing or broken."""
    try:
        entries = json.loads(Path(path).read_text())["gpus"]
        return {name: Tuning(e["dtype"], e["mode"]) for name, e in entries.items()}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError, InvalidInput) as exc:
        log.warning("ignoring tuning file %s: %s", path, exc)
        return {}


@functools.lru_cache(maxsize=8)
def tuning_for(gpu_name: str, path: Path = TUNING_FILE) -> Tuning:
    """The measured tuning of a GPU, else the default."""
    tuning = read_tunings(path).get(gpu_name)
    if tuning is None:
        log.info("no measured tuning for %s; using %s", gpu_name, Tuning())
        return Tuning()
    return tuning


def device_tuning(device: torch.device) -> Tuning:
    """The tuning for a device: measured for its GPU model, the default on a CPU."""
    if device.type != "cuda":
        return Tuning()
    return tuning_for(torch.cuda.get_device_name(device))


def write_tuning(path: Path, gpu_name: str, tuning: Tuning, evidence: dict[str, Any]) -> None:
    """Add or replace one GPU's entry (with what it was chosen from) in a tuning file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        data = {}
    data.setdefault("gpus", {})[gpu_name] = {**asdict(tuning), "evidence": evidence}
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
