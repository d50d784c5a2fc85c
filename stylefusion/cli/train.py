"""`stylefusion train`: a fast style from a painting (writes models/NAME)."""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..architecture import VARIANTS
from ..choices import DEVICE_CHOICES
from ..errors import Cancelled
from ..train_config import DEFAULT_STEPS, TrainConfig
from .common import PROG, positive_float, positive_int, say
from .ui import interruptible, progress_bar


def add(sub: Any) -> None:
    p = sub.add_parser("train", help="train a fast style (writes models/NAME)")
    p.add_argument("--style-image", type=Path, required=True, metavar="IMG")
    p.add_argument("--content", type=Path, metavar="DIR",
                   help="training photos (default: the ones shipped with stylefusion)")  # fmt: skip
    p.add_argument("--name", required=True, help="style name: a-z, 0-9 and '-'")
    p.add_argument("--output", type=Path, default=Path("models"), metavar="DIR", help="models dir")
    p.add_argument("--variant", choices=tuple(VARIANTS), default="full")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument(
        "--steps", type=positive_int, help=f"training steps (default {DEFAULT_STEPS})"
    )
    budget.add_argument("--seconds", type=positive_float, help="train for this long instead")
    p.add_argument("--size", type=positive_int, default=TrainConfig.size, metavar="N",
                   help=f"crops ({TrainConfig.size})")  # fmt: skip
    p.add_argument("--batch-size", type=positive_int, default=TrainConfig.batch_size, metavar="N",
                   help=f"default {TrainConfig.batch_size}")  # fmt: skip
    p.add_argument(
        "--style-weight", type=positive_float, help=f"default {TrainConfig.style_weight:g}"
    )
    p.add_argument(
        "--style-size", type=positive_int, metavar="N",
        help=f"the painting's short side for its style ({TrainConfig.style_size})",
    )  # fmt: skip
    p.add_argument(
        "--content-weight", type=positive_float, help=f"default {TrainConfig.content_weight:g}"
    )
    p.add_argument("--tv-weight", type=float, help="total variation weight")
    p.add_argument("--lr", type=positive_float, help=f"learning rate (default {TrainConfig.lr:g})")
    p.add_argument("--device", choices=DEVICE_CHOICES, default="auto")
    p.add_argument("--threads", type=positive_int, help="CPU threads (default: all cores)")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace an existing variant")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from ..content import default_photos_dir
    from ..trainer import train

    optional = {
        "steps": args.steps,
        "seconds": args.seconds,
        "style_weight": args.style_weight,
        "style_size": args.style_size,
        "content_weight": args.content_weight,
        "tv_weight": args.tv_weight,
        "lr": args.lr,
        "threads": args.threads,
    }
    config = TrainConfig(
        style_image=args.style_image,
        content_dir=args.content or default_photos_dir(),
        name=args.name,
        output_dir=args.output,
        variant=args.variant,
        size=args.size,
        batch_size=args.batch_size,
        device=args.device,
        resume=args.resume,
        overwrite=args.overwrite,
        seed=args.seed,
        command=shlex.join([PROG, *argv]),
        **{k: v for k, v in optional.items() if v is not None},
    )
    try:
        with progress_bar(args.quiet, "train", "step") as bar, interruptible() as cancel:
            result = train(config, progress=bar, cancel=cancel)
    except Cancelled:
        raise Cancelled("checkpoint saved; add --resume to continue") from None
    say(args, f"trained {result.folder} ({result.steps} steps, {result.seconds:.0f} s)")
    return 0
