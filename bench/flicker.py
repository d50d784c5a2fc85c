"""Flicker benchmark: how much stylized frames change where their source does not move.

    python bench/flicker.py --clip ../shared/data/clips/megamind.avi \
        --photo ../shared/data/content/city.jpg --models single=models --models multi=DIR \
        --blend 0.7 --output bench/results.json

Two inputs at --max-side px (480): (a) the clip's stillest --frames frames, picked by the
source's own change (the window whose frame pairs have the most static pixels), compared frame
t with t+1; (b) a synthetic pan over a held-out photo (--pan-step px a frame, sub-pixel, plus
--noise-std levels of Gaussian sensor noise), where frame t is first moved by the known motion.
Static: no source channel changed by --threshold levels, nor within --margin px (see
stylefusion/flicker.py). Every style of each --models LABEL=DIR runs frame by frame (lite, eager
fp32, CPU, --threads); ratios are to the first set (today's per-frame stylization). "pan_floor"
is what a perfectly steady stylization scores: the style painted once on the whole photo and
panned the same way (the bilinear warps' own blur). With --blend A the first set also runs
through the flow-guided blend of `stylefusion video --flow-blend A`, timed in ms per frame.
JSON under --key ("flicker") in --output, other benchmarks' keys kept; also printed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import torch
from results import merge_results

from stylefusion.bench import describe_machine
from stylefusion.errors import StyleFusionError
from stylefusion.flicker import (
    FlickerConfig,
    Motion,
    flicker,
    static_fractions,
    stillest_window,
    synthetic_pan,
)
from stylefusion.images import load_image
from stylefusion.style_folder import list_styles
from stylefusion.stylizer import Stylizer
from stylefusion.video import even_size
from stylefusion.video.flow_blend import FlowBlender

log = logging.getLogger("flicker")


@dataclass(frozen=True)
class Input:
    """Frames to stylize, the known motion per pair (None: still camera), and what they are."""

    name: str
    frames: list[np.ndarray]  # (H, W, 3) uint8 each
    motions: list[Motion] | None
    about: dict[str, Any]
    photo: np.ndarray | None = None  # the pan's whole photo, for its floor


def clip_input(path: Path, max_side: int, length: int, config: FlickerConfig) -> Input:
    """The clip's stillest `length` frames at max_side, and which ones they are."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        width, height = even_size(stream.width, stream.height, max_side)
        rate = float(stream.average_rate or 25)
        frames = [f.to_ndarray(width=width, height=height, format="rgb24", interpolation="AREA")
                  for f in container.decode(stream)]  # fmt: skip
    fractions = static_fractions(frames, config)
    start = stillest_window(fractions, length)
    window = frames[start : start + length]
    about = {
        "file": path.name,
        "size": [width, height],
        "frames": [start, start + length - 1],  # first and last, counted from 0
        "seconds": [round(start / rate, 2), round((start + length - 1) / rate, 2)],
        "of_frames": len(frames),
        "static_fraction": round(float(fractions[start : start + length - 1].mean()), 4),
        "source_noise": round(flicker(window, window, None, config).change, 4),
    }
    return Input("clip", window, None, about)


def pan_input(path: Path, args: argparse.Namespace, config: FlickerConfig) -> Input:
    """A pan of --frames frames over the photo, scaled just large enough to hold it."""
    width = args.max_side - args.max_side % 4
    height = (width * 3 // 4) - (width * 3 // 4) % 4
    step = (args.pan_step[0], args.pan_step[1])
    reach = [abs(s) * (args.frames - 1) + 2 for s in step]
    photo = load_image(path)  # (H0, W0, 3) uint8
    scale = max((width + reach[0]) / photo.shape[1], (height + reach[1]) / photo.shape[0])
    size = (round(photo.shape[1] * scale), round(photo.shape[0] * scale))
    photo = cv2.resize(photo, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    frames, motions = synthetic_pan(photo, (width, height), args.frames, step, args.noise_std)
    about = {
        "file": path.name,
        "size": [width, height],
        "frames": args.frames,
        "step_px": list(step),
        "noise_std": args.noise_std,
        # the source's own change after the warp: its noise plus the warp's blur
        "source_noise": round(flicker(frames, frames, motions, config).change, 4),
    }
    return Input("pan", frames, motions, about, photo)


def score_style(
    stylizer: Stylizer, inputs: list[Input], config: FlickerConfig, blend: float
) -> tuple[dict[str, float], float, list[float]]:
    """One style's flicker on every input (and with the blend); its ms per stylized frame and
    the blend's ms per frame."""
    row: dict[str, float] = {}
    stylize_s, blend_ms, count = 0.0, [], 0
    for item in inputs:
        started = time.perf_counter()
        painted = [stylizer(frame)[0] for frame in item.frames]
        stylize_s, count = stylize_s + time.perf_counter() - started, count + len(painted)
        row[item.name] = _change(item, painted, config)
        if item.photo is not None:
            row[f"{item.name}_floor"] = _pan_floor(stylizer, item, config)
        if blend > 0:
            blended, ms = _blended(blend, item.frames, painted)
            blend_ms += ms
            row[f"{item.name}_blend"] = _change(item, blended, config)
            row[f"{item.name}_blend_gap"] = round(_gap(blended, painted), 4)
    return row, 1000 * stylize_s / max(count, 1), blend_ms


def _change(item: Input, painted: list[np.ndarray], config: FlickerConfig) -> float:
    return round(flicker(item.frames, painted, item.motions, config).change, 4)


def _pan_floor(stylizer: Stylizer, item: Input, config: FlickerConfig) -> float:
    """The pan's score for a stylization that is perfectly steady: painted once, then panned."""
    assert item.photo is not None and item.motions is not None
    painted_photo = stylizer(item.photo)[0]
    step = (-item.motions[0][0], -item.motions[0][1])
    width, height = item.about["size"]
    steady, _ = synthetic_pan(painted_photo, (width, height), len(item.frames), step)
    return _change(item, steady, config)


def _blended(amount: float, sources: list[np.ndarray], painted: list[np.ndarray]):
    """The flow-guided blend of a clip's stylized frames, and ms per frame it took."""
    blender, out, times = FlowBlender(amount), [], []
    for source, frame in zip(sources, painted, strict=True):
        started = time.perf_counter()
        out.append(blender(source, frame))
        times.append(1000 * (time.perf_counter() - started))
    return out, times[1:]  # the first frame has no previous one: nothing to do


def _gap(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    """Mean |a - b| in levels: how far the blend strays from per-frame stylization."""
    return float(
        np.mean([np.abs(x.astype(np.float32) - y).mean() for x, y in zip(a, b, strict=True)])
    )


def score_set(
    folder: Path, inputs: list[Input], config: FlickerConfig, blend: float
) -> tuple[dict[str, dict[str, float]], list[float]]:
    """Every style of a models dir: style -> scores; and the blend's ms per frame."""
    rows, blend_ms = {}, []
    for info in list_styles(folder):
        stylizer = Stylizer.from_style(info.path, "lite", "cpu", compile="off")
        row, stylize_ms, ms = score_style(stylizer, inputs, config, blend)
        steps = info.meta["variants"]["lite"].get("training", {}).get("steps")
        rows[info.name] = {**row, "stylize_ms": round(stylize_ms, 1), "training_steps": steps}
        blend_ms += ms
        log.info("%s %s: %s", folder, info.name, rows[info.name])
    return rows, blend_ms


def ratios(scores: dict[str, dict[str, dict[str, float]]], base: str) -> dict[str, Any]:
    """Each set's (and the blend's) flicker over the base set's per-frame flicker, per style."""
    out: dict[str, Any] = {}
    for label, rows in scores.items():
        for suffix in ("", "_blend"):
            table = _ratio_table(rows, scores[base], suffix)
            if table and (label != base or suffix):
                out[label + suffix] = {**table, "mean": _mean_row(table)}
    return out


def _ratio_table(
    rows: dict[str, dict[str, float]], base: dict[str, dict[str, float]], suffix: str
) -> dict[str, dict[str, float]]:
    """style -> {input: score with suffix / base's per-frame score} for the styles both have."""
    table = {}
    for style, row in rows.items():
        ref = base.get(style, {})
        cells = {k: round(row[k + suffix] / ref[k], 3) for k in ("clip", "pan")
                 if k + suffix in row and ref.get(k)}  # fmt: skip
        if cells:
            table[style] = cells
    return table


def _mean_row(table: dict[str, dict[str, float]]) -> dict[str, float]:
    keys = {k for row in table.values() for k in row}
    return {k: round(float(np.mean([r[k] for r in table.values() if k in r])), 3) for k in keys}


def models_arg(text: str) -> tuple[str, Path]:
    """argparse type of --models: LABEL=DIR."""
    label, sep, folder = text.partition("=")
    if not sep or not label or not folder:
        raise argparse.ArgumentTypeError(f"expected LABEL=DIR, got {text!r}")
    return label, Path(folder)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options of the flicker benchmark."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--clip", type=Path, help="a clip with a still-camera stretch")
    p.add_argument("--photo", type=Path, help="a held-out photo to pan over")
    p.add_argument("--models", type=models_arg, action="append", metavar="LABEL=DIR",
                   help="a models dir to score (repeatable; the first is the base)")  # fmt: skip
    p.add_argument("--max-side", type=int, default=480)
    p.add_argument("--frames", type=int, default=24, help="frames per input (24)")
    p.add_argument("--pan-step", type=float, nargs=2, default=[0.37, 0.13], metavar=("DX", "DY"))
    p.add_argument("--noise-std", type=float, default=2.0, help="pan's sensor noise, levels")
    p.add_argument("--threshold", type=float, default=FlickerConfig.threshold)
    p.add_argument("--margin", type=int, default=FlickerConfig.margin)
    p.add_argument("--blend", type=float, default=0.0, help="also run the flow blend at A")
    p.add_argument("--threads", type=int, default=1, help="torch and OpenCV threads (1)")
    p.add_argument("--output", type=Path, default=Path("bench/results.json"))
    p.add_argument("--key", default="flicker", help="its key in --output")
    args = p.parse_args(argv)
    if not (args.clip or args.photo):
        p.error("give --clip, --photo or both")
    args.models = args.models or [("single", Path("models"))]
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Build the inputs, score every set, and put the report together."""
    config = FlickerConfig(args.threshold, args.margin)
    load_before = os.getloadavg()
    inputs = [clip_input(args.clip, args.max_side, args.frames, config)] if args.clip else []
    inputs += [pan_input(args.photo, args, config)] if args.photo else []
    scores, blend_ms = {}, []
    for i, (label, folder) in enumerate(args.models):
        scores[label], ms = score_set(folder, inputs, config, args.blend if i == 0 else 0.0)
        blend_ms += ms
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": describe_machine(torch.device("cpu")),
        "load_average": {"start": _load(load_before), "end": _load(os.getloadavg())},
        "torch": torch.__version__,
        "config": {
            "threshold": config.threshold,
            "margin": config.margin,
            "blend": args.blend,
            "models": {label: str(folder) for label, folder in args.models},
        },
        "inputs": {item.name: item.about for item in inputs},
        "scores": scores,
        "ratios": ratios(scores, args.models[0][0]),
        "blend_ms_per_frame": _blend_timing(blend_ms, inputs),
    }


def _load(values: tuple[float, float, float]) -> list[float]:
    return [round(v, 2) for v in values]


def _blend_timing(ms: list[float], inputs: list[Input]) -> dict[str, Any] | None:
    if not ms:
        return None
    sizes = sorted({"x".join(map(str, i.about["size"])) for i in inputs})
    return {"median": round(float(np.median(ms)), 2), "p90": round(float(np.percentile(ms, 90)), 2),
            "frames": len(ms), "sizes": sizes}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, merge its JSON into --output and print it."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    try:
        report = run(args)
    except (StyleFusionError, OSError, av.FFmpegError) as exc:
        print(f"flicker: error: {exc}", file=sys.stderr)
        return 2
    merge_results(args.output, args.key, report)
    json.dump(report, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
