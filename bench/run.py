"""`make bench`: inference fps of both variants at two sizes (CPU, and CUDA if present) and
training steps per second at 128 px; writes one JSON file and prints it."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from stylefusion.bench import BenchConfig, describe_machine, run_bench
from stylefusion.errors import StyleFusionError

log = logging.getLogger("bench")


def inference_runs(
    devices: list[str], sizes: list[tuple[int, int]], repeats: int
) -> list[dict[str, Any]]:
    """run_bench for every device x variant x size, batch 1."""
    results = []
    for device in devices:
        for variant in ("full", "lite"):
            for width, height in sizes:
                config = BenchConfig(
                    device=device, variant=variant, width=width, height=height, repeats=repeats
                )
                results.append(run_bench(config))
    return results


def _synthetic_content(folder: Path, count: int = 8, side: int = 160) -> Path:
    """A folder of seeded gradient-plus-noise photos, and a noisy style image beside it."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    yy, xx = np.mgrid[0:side, 0:side]
    for i in range(count):
        base = np.stack([xx * (i + 1), yy * 2, (xx + yy) * 3], axis=-1) % 256
        noisy = np.clip(base + rng.integers(0, 40, base.shape), 0, 255).astype(np.uint8)
        Image.fromarray(noisy).save(folder / f"c{i}.jpg")
    style = folder.parent / "style.png"
    Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)).save(style)
    return style


def training_runs(
    devices: list[str], size: int, steps: int, batch_size: int
) -> list[dict[str, Any]]:
    """Training steps/s per device and variant, timed between progress reports (setup excluded)."""
    try:
        from stylefusion.trainer import TrainConfig, train
    except ImportError:
        log.warning("stylefusion.trainer is missing; skipping the training benchmark")
        return []
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        style = _synthetic_content(Path(tmp) / "content")
        for device in devices:
            for variant in ("full", "lite"):
                stamps: list[float] = []
                config = TrainConfig(
                    style_image=style,
                    content_dir=Path(tmp) / "content",
                    name=f"bench-{variant}",
                    output_dir=Path(tmp) / f"models-{device}",
                    variant=variant,
                    steps=steps + 1,  # the first step (allocations, caches) is not timed
                    size=size,
                    batch_size=batch_size,
                    device=device,
                    preview_every=0,
                    checkpoint_every_s=3600,
                )
                train(config, progress=lambda _p, s=stamps: s.append(time.perf_counter()))
                rate = (len(stamps) - 1) / (stamps[-1] - stamps[0])
                results.append(_training_row(device, variant, size, batch_size, steps, rate))
    return results


def _training_row(
    device: str, variant: str, size: int, batch: int, steps: int, rate: float
) -> dict[str, Any]:
    """One training result as JSON-ready fields."""
    log.info("train %s %s %d px batch %d: %.3f steps/s", device, variant, size, batch, rate)
    return {
        "device": device,
        "variant": variant,
        "size": size,
        "batch_size": batch,
        "timed_steps": steps,
        "steps_per_s": rate,
        "images_per_s": rate * batch,
    }


def _size(text: str) -> tuple[int, int]:
    width, height = text.lower().split("x")
    return int(width), int(height)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options of the benchmark script."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--output", type=Path, default=Path("bench/results.json"))
    p.add_argument("--sizes", type=_size, nargs="+", default=[(320, 240), (640, 480)])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--device", action="append", help="default: cpu, plus cuda if present")
    p.add_argument("--train-size", type=int, default=128)
    p.add_argument("--train-steps", type=int, default=3, help="timed steps (0: skip training)")
    p.add_argument("--train-batch", type=int, default=8)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks, write JSON to --output and print it."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    devices = args.device or ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    try:
        report = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": describe_machine(torch.device("cpu")),
            "gpu": describe_machine(torch.device("cuda")) if "cuda" in devices else None,
            "torch": torch.__version__,
            "inference": inference_runs(devices, args.sizes, args.repeats),
            "training": training_runs(devices, args.train_size, args.train_steps, args.train_batch)
            if args.train_steps > 0
            else [],
        }
    except StyleFusionError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 2
    text = json.dumps(report, indent=2)
    try:  # keep what the live benchmarks (bench/live.py --output) wrote there
        merged = json.loads(args.output.read_text()) | report
    except (OSError, ValueError):
        merged = report
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(merged, indent=2) + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
