"""`stylefusion render`: iterative (Gatys) style transfer of one image."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..choices import DEVICE_CHOICES
from ..render_config import OPTIMIZERS, RenderConfig
from .common import positive_float, positive_int, say
from .ui import interruptible, progress_bar


def add(sub: Any) -> None:
    p = sub.add_parser("render", help="iterative (Gatys) style transfer of one image")
    p.add_argument("--content", type=Path, required=True, metavar="IMG")
    p.add_argument("--style-image", type=Path, required=True, metavar="IMG")
    p.add_argument("--output", type=Path, required=True, metavar="IMG")
    p.add_argument("--size", type=positive_int, default=RenderConfig.size, metavar="N",
                   help=f"longest side ({RenderConfig.size})")  # fmt: skip
    p.add_argument("--iterations", type=positive_int, default=RenderConfig.iterations,
                   metavar="N", help=f"default {RenderConfig.iterations}")  # fmt: skip
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=RenderConfig.optimizer)
    p.add_argument("--style-weight", type=positive_float)
    p.add_argument("--content-weight", type=positive_float)
    p.add_argument("--tv-weight", type=float)
    p.add_argument("--scales", type=positive_int, help="coarse-to-fine passes (default 1)")
    p.add_argument("--device", choices=DEVICE_CHOICES, default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from ..renderer import render

    optional = {
        "style_weight": args.style_weight,
        "content_weight": args.content_weight,
        "tv_weight": args.tv_weight,
        "scales": args.scales,
    }
    config = RenderConfig(
        content=args.content,
        style_image=args.style_image,
        output=args.output,
        size=args.size,
        iterations=args.iterations,
        optimizer=args.optimizer,
        device=args.device,
        seed=args.seed,
        **{k: v for k, v in optional.items() if v is not None},
    )
    with progress_bar(args.quiet, "render", "it") as bar, interruptible() as cancel:
        result = render(config, progress=bar, cancel=cancel)
    say(args, f"wrote {result.output} ({result.seconds:.1f} s)")
    return 0
