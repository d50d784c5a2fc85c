"""GPU inference benchmark: frame sizes x batches x variants x half dtypes x compile modes.

For each cell: ms per batch through the Stylizer (uint8 frames in and out, as the server runs
it), the model alone on the GPU, fps, and the fraction of the arithmetic floor (FLOPs of the
network / the GPU's dense half-precision peak). Cells run in priority order until the time
budget is spent (compiling is what costs); the rest are listed as skipped. The fastest
(dtype, mode) of the full network is written as the tuning the server uses on this GPU.

    python bench/gpu_inference.py --out OUT [--budget-s 150] [--dry-run]
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import math
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from stylefusion.bench import describe_machine
from stylefusion.devices import configure_torch, resolve_device
from stylefusion.stylizer import Stylizer
from stylefusion.transformer_net import build_transformer
from stylefusion.tuning import Tuning, write_tuning

log = logging.getLogger("gpu_inference")

SIZES = ((1280, 720), (640, 480))
BATCHES = (1, 2, 4, 8, 16)
# shapes in the order they matter: batched 720p (throughput), batch 1 (latency), then the rest
KEY_SHAPES = ((1280, 720, 8), (1280, 720, 1), (640, 480, 1), (640, 480, 8), (1280, 720, 16))
PEAK_HALF_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L40S": 362e12}
COMPILE_COST_S = {
    "eager": 1.0,
    "default": 20.0,
    "reduce-overhead": 25.0,
    "frozen": 20.0,
    "max-autotune": 60.0,
}
MIN_TIMED_S = 0.15  # each timed repeat lasts at least this long


@dataclass(frozen=True)
class Cell:
    """One measurement: a network variant at one frame size and batch, one dtype and mode."""

    variant: str
    dtype: str
    mode: str
    width: int
    height: int
    batch: int

    @property
    def key(self) -> str:
        return f"{self.variant}/{self.dtype}/{self.mode}/{self.width}x{self.height}/b{self.batch}"


def flops_per_pixel(variant: str) -> float:
    """Multiply-adds x 2 of the transformer's convolutions per output pixel (counted by hooks)."""
    model = build_transformer(variant)
    macs = 0

    def count(module: torch.nn.Module, args: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal macs
        if isinstance(module, torch.nn.Conv2d):
            kernel = module.kernel_size[0] * module.kernel_size[1]
            macs += out.numel() * module.in_channels // module.groups * kernel
        elif isinstance(module, torch.nn.ConvTranspose2d):
            kernel = module.kernel_size[0] * module.kernel_size[1]
            macs += args[0].numel() * module.out_channels // module.groups * kernel

    for module in model.modules():
        module.register_forward_hook(count)
    with torch.no_grad():
        model(torch.zeros(1, 3, 64, 64))
    return 2.0 * macs / (64 * 64)


def peak_flops(gpu_name: str) -> float | None:
    """Dense fp16/bf16 tensor-core peak of a known GPU, else None."""
    return next((v for k, v in PEAK_HALF_FLOPS.items() if k in gpu_name), None)


def plan(dry_run: bool) -> list[Cell]:
    """Every cell once, most important first."""
    return list(dict.fromkeys(_cells(dry_run)))


def _cells(dry_run: bool) -> Iterator[Cell]:
    """Eager everywhere, then the compile modes shape by shape (may repeat a cell)."""
    sizes = ((32, 24),) if dry_run else SIZES
    batches = (1, 2) if dry_run else BATCHES
    modes = ("eager",) if dry_run else ("default", "reduce-overhead", "frozen", "max-autotune")
    shapes = [(w, h, b) for (w, h) in sizes for b in batches]
    key = [s for s in KEY_SHAPES if s in shapes] + [s for s in shapes if s not in KEY_SHAPES]
    for variant, dtype in itertools.product(("full", "lite"), ("float16", "bfloat16")):
        for w, h, b in shapes:
            yield Cell(variant, dtype, "eager", w, h, b)
    for w, h, b in key:  # full fp16: every compile mode at each shape before the next shape
        for mode in modes:
            yield Cell("full", "float16", mode, w, h, b)
    for w, h, b in key[:3]:  # the other dtype and the lite net, compiled the default way
        yield Cell("full", "bfloat16", modes[0], w, h, b)
        yield Cell("lite", "float16", modes[0], w, h, b)


class Runner:
    """Keeps one Stylizer per (variant, dtype, mode), so a mode's compiled shapes are reused."""

    def __init__(self, device: torch.device, min_timed_s: float = MIN_TIMED_S) -> None:
        self.device = device
        self.min_timed_s = min_timed_s
        self.stylizers: dict[tuple[str, str, str], Stylizer] = {}

    def stylizer(self, cell: Cell) -> Stylizer:
        """The stylizer of a cell's network, dtype and mode (seeded random weights)."""
        key = (cell.variant, cell.dtype, cell.mode)
        if key not in self.stylizers:
            torch.manual_seed(0)
            model = build_transformer(cell.variant)
            compile = "off" if cell.mode == "eager" else "inline"
            tuning = Tuning(cell.dtype, cell.mode)
            half = self.device.type == "cuda"  # a CPU (the dry run) has no fast half convolutions
            self.stylizers[key] = Stylizer(
                model, self.device, half=half, compile=compile, tuning=tuning, name=cell.key
            )
        return self.stylizers[key]

    def measure(self, cell: Cell, repeats: int) -> dict[str, Any]:
        """Warm up (compiles), then time the Stylizer and the model alone; ms per batch."""
        stylizer = self.stylizer(cell)
        rng = np.random.default_rng(0)
        frames = rng.integers(0, 256, (cell.batch, cell.height, cell.width, 3), np.uint8)
        start = time.perf_counter()
        stylizer(frames)
        first_s = time.perf_counter() - start
        if stylizer.compile_mode != "off" and stylizer.model is stylizer.eager:
            raise RuntimeError("torch.compile failed; the stylizer fell back to eager")
        styled = stylizer(frames)
        end_to_end = self._time(lambda: stylizer(frames), repeats)
        with torch.inference_mode():
            x = stylizer._prepare(torch.from_numpy(frames))  # (B, 3, H, W) on the device
            model_ms = self._time(lambda: stylizer.model(x), repeats)
        return {
            "mean_diff_vs_eager": self._diff_vs_eager(cell, frames, styled),
            "half": stylizer.half,
            "first_call_s": round(first_s, 2),
            "ms_per_batch": end_to_end,
            "model_ms": model_ms,
        }

    def _diff_vs_eager(self, cell: Cell, frames: np.ndarray, styled: np.ndarray) -> float | None:
        """Mean |difference| (0..255) from the eager model of the same weights and dtype."""
        eager = self.stylizers.get((cell.variant, cell.dtype, "eager"))
        if cell.mode == "eager" or eager is None:
            return None
        return round(float(np.abs(eager(frames).astype(int) - styled.astype(int)).mean()), 3)

    def _time(self, call: Any, repeats: int) -> float:
        """Median ms of one call over `repeats` timed runs (each long enough to time well)."""
        _sync(self.device)
        start = time.perf_counter()
        call()
        _sync(self.device)
        calls = max(1, math.ceil(self.min_timed_s / max(time.perf_counter() - start, 1e-6)))
        runs = []
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(calls):
                call()
            _sync(self.device)
            runs.append((time.perf_counter() - start) / calls)
        return round(statistics.median(runs) * 1000.0, 3)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def describe(cell: Cell, timing: dict[str, Any], flops: float, peak: float | None) -> dict:
    """A cell's JSON row: timings, fps and the fraction of the arithmetic floor."""
    pixels = cell.width * cell.height * cell.batch
    floor_ms = pixels * flops / peak * 1000.0 if peak else None
    return {
        **{k: getattr(cell, k) for k in ("variant", "dtype", "mode", "batch")},
        "size": f"{cell.width}x{cell.height}",
        **timing,
        "fps": round(cell.batch * 1000.0 / timing["ms_per_batch"], 1),
        "model_fps": round(cell.batch * 1000.0 / timing["model_ms"], 1),
        "floor_ms": round(floor_ms, 3) if floor_ms else None,
        "fraction_of_floor": round(floor_ms / timing["model_ms"], 3) if floor_ms else None,
    }


def choose(rows: list[dict[str, Any]]) -> tuple[Tuning, dict[str, Any]]:
    """The (dtype, mode) of the full net with the best geometric-mean fps over shared shapes."""
    full = [r for r in rows if "fps" in r and r["variant"] == "full"]
    combos: dict[tuple[str, str], dict[tuple[str, int], float]] = {}
    for r in full:
        combos.setdefault((r["dtype"], r["mode"]), {})[(r["size"], r["batch"])] = r["fps"]
    # compare on the shapes every candidate measured, so a sparse one is not flattered
    shared = set.intersection(*(set(c) for c in combos.values())) if combos else set()
    ranked = {
        c: _geomean([cells[s] for s in shared] or list(cells.values()))
        for c, cells in combos.items()
    }
    if not ranked:
        return Tuning(), {"reason": "nothing measured"}
    best = max(ranked, key=ranked.__getitem__)
    evidence = {
        "geomean_fps": {f"{d}/{m}": round(v, 1) for (d, m), v in sorted(ranked.items())},
        "shapes": sorted(f"{s}/b{b}" for s, b in shared),
    }
    return Tuning(*best), evidence


def _geomean(values: list[float]) -> float:
    return math.exp(statistics.fmean(math.log(v) for v in values))


def run(out: Path, budget_s: float, dry_run: bool) -> dict[str, Any]:
    """Measure cells until the budget is spent; write inference.json and cuda_tuning.json."""
    device = resolve_device("cpu" if dry_run else "cuda")
    configure_torch()
    gpu = describe_machine(device)
    peak = peak_flops(gpu) if device.type == "cuda" else None
    flops = {v: flops_per_pixel(v) for v in ("full", "lite")}
    runner = Runner(device, min_timed_s=0.0 if dry_run else MIN_TIMED_S)
    rows: list[dict[str, Any]] = []
    deadline = time.monotonic() + budget_s
    for cell in plan(dry_run):
        left = deadline - time.monotonic()
        if left < COMPILE_COST_S[cell.mode] * (0.05 if dry_run else 1.0):
            rows.append({"cell": cell.key, "skipped": f"time budget ({left:.0f} s left)"})
            continue
        try:
            timing = runner.measure(cell, repeats=1 if dry_run else 5)
            rows.append(describe(cell, timing, flops[cell.variant], peak))
            log.info("%s: %.1f fps", cell.key, rows[-1]["fps"])
        except Exception as exc:  # noqa: BLE001 - an OOM or compiler error skips one cell
            rows.append({"cell": cell.key, "error": f"{type(exc).__name__}: {exc}"[:300]})
            log.warning("%s failed: %s", cell.key, exc)
            if device.type == "cuda":
                torch.cuda.empty_cache()
    tuning, evidence = choose(rows)
    result = {
        "device": gpu,
        "torch": torch.__version__,
        "flops_per_pixel": flops,
        "peak_half_flops": peak,
        "budget_s": budget_s,
        "tuning": {"dtype": tuning.dtype, "mode": tuning.mode, **evidence},
        "cells": rows,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "inference.json").write_text(json.dumps(result, indent=2) + "\n")
    write_tuning(out / "cuda_tuning.json", gpu, tuning, evidence)
    return result


def main(argv: list[str] | None = None) -> int:
    """Parse options, run, print the chosen tuning."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--budget-s", type=float, default=150.0)
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny sizes, eager only")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    result = run(args.out, args.budget_s, args.dry_run)
    print(json.dumps(result["tuning"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
