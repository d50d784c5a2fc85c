"""`stylefusion bench`: inference speed in frames per second."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .common import frame_size, inference_options, positive_int


def add(sub: Any) -> None:
    p = sub.add_parser("bench", help="inference speed (frames per second)")
    p.add_argument("--size", type=frame_size, default=(320, 240), metavar="WxH", help="320x240")
    p.add_argument("--batch-size", type=positive_int, default=1, metavar="N", help="default 1")
    p.add_argument("--repeats", type=positive_int, default=5, metavar="N", help="median of N")
    p.add_argument("--warmup", type=int, default=2, metavar="N", help="untimed runs first")
    p.add_argument("--style", metavar="NAME_OR_DIR", help="time a style (default: random)")
    p.add_argument("--models-dir", type=Path, default=Path("models"), metavar="DIR")
    p.add_argument("--threads", type=positive_int, metavar="N", help="CPU threads")
    p.add_argument("--json", action="store_true", help="print only one JSON object")
    compiled = p.add_mutually_exclusive_group()
    compiled.add_argument(
        "--compile", dest="compile", action="store_true", default=None, help="torch.compile"
    )
    compiled.add_argument("--no-compile", dest="compile", action="store_false", help="eager")
    inference_options(p, style=False)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from ..bench import BenchConfig, run_bench
    from ..style_folder import resolve_style

    style = resolve_style(args.style, args.models_dir) if args.style else None
    width, height = args.size
    config = BenchConfig(
        device=args.device,
        variant=args.variant,
        width=width,
        height=height,
        batch_size=args.batch_size,
        repeats=args.repeats,
        warmup=max(0, args.warmup),
        style=style,
        threads=args.threads,
        compile=args.compile,
    )
    result = run_bench(config)
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{result['device']} {result['variant']} {result['size']} batch {config.batch_size}: "
            f"{result['fps']:.1f} fps ({result['ms_per_batch']:.1f} ms per batch)"
        )
    return 0
