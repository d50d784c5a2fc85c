"""`stylefusion train`: a new style from a painting (writes models/NAME).

Where the models dir (--output) holds a shared backbone, the new style is its norms fitted to
that backbone (the library's new-style job, minutes on a CPU); --backbone names another,
--fine-tune trains its convolutions too, --backbone none trains a network of its own as before.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..architecture import VARIANTS
from ..choices import DEVICE_CHOICES
from ..errors import Cancelled, NotConverged
from ..train_config import (
    DEFAULT_STEPS,
    FIT_BATCH,
    FIT_SIZE,
    FIT_STEPS,
    MIN_FIT_STEPS,
    TrainConfig,
)
from .common import PROG, fail, positive_float, positive_int, say
from .ui import interruptible, progress_bar

log = logging.getLogger("stylefusion")

EXIT_NOT_CONVERGED = 1  # the run ended but did not converge: no style was written
NO_BACKBONE = "none"


def add(sub: Any) -> None:
    p = sub.add_parser("train", help="train a new style (writes models/NAME)")
    p.add_argument("--style-image", type=Path, required=True, metavar="IMG")
    p.add_argument("--content", type=Path, metavar="DIR",
                   help="training photos (default: the ones shipped with stylefusion)")  # fmt: skip
    p.add_argument("--name", required=True, help="style name: a-z, 0-9 and '-'")
    p.add_argument("--output", type=Path, default=Path("models"), metavar="DIR", help="models dir")
    p.add_argument(
        "--backbone", metavar="ID|STYLE|none",
        help="fit the new style's norms to this shared backbone (its id, or a style on it); "
        "default: the one most styles in --output share; none: a network of its own",
    )  # fmt: skip
    p.add_argument(
        "--fine-tune",
        action="store_true",
        help="train the shared backbone's convolutions too (a backbone of its own)",
    )
    p.add_argument(
        "--variant",
        choices=tuple(VARIANTS),
        help="network (default: the backbone's; a network of its own: full)",
    )
    budget = p.add_mutually_exclusive_group()
    budget.add_argument(
        "--steps",
        type=positive_int,
        help=f"training steps (default for a new style on a shared backbone: what leaves it "
        f"live within 5 min on a CPU, 15 s on a GPU, {MIN_FIT_STEPS}..{FIT_STEPS}; for a "
        f"network of its own {DEFAULT_STEPS})",
    )
    budget.add_argument("--seconds", type=positive_float, help="train for this long instead")
    p.add_argument(
        "--size",
        type=positive_int,
        metavar="N",
        help=f"crops ({FIT_SIZE} on a shared backbone, else {TrainConfig.size})",
    )
    p.add_argument(
        "--batch-size",
        type=positive_int,
        metavar="N",
        help=f"default {FIT_BATCH} on a shared backbone, else {TrainConfig.batch_size}",
    )
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
    from ..trainer import train

    config = plan(args, build_config(args, argv))
    try:
        with progress_bar(args.quiet, "train", "step") as bar, interruptible() as cancel:
            result = train(config, progress=bar, cancel=cancel)
    except Cancelled:
        raise Cancelled("checkpoint saved; add --resume to continue") from None
    except NotConverged as exc:
        kept = "its checkpoint is kept: --resume with a larger budget continues it"
        return fail(f"{exc}; no style was written ({kept})", EXIT_NOT_CONVERGED)
    say(args, f"trained {result.folder} ({result.steps} steps, {result.seconds:.0f} s)")
    return 0


def build_config(args: argparse.Namespace, argv: Sequence[str]) -> TrainConfig:
    """The run the command line asks for: a new style on a shared backbone where there is
    one (explicit values over the new-style defaults), else a network of its own."""
    from ..content import default_photos_dir
    from ..style_fit import default_backbone, find_backbone, new_style_config

    explicit = {
        "steps": args.steps, "seconds": args.seconds, "size": args.size,
        "batch_size": args.batch_size, "style_weight": args.style_weight,
        "style_size": args.style_size, "content_weight": args.content_weight,
        "tv_weight": args.tv_weight, "lr": args.lr, "threads": args.threads,
    }  # fmt: skip
    common = {
        "output_dir": args.output, "device": args.device, "resume": args.resume,
        "overwrite": args.overwrite, "seed": args.seed, "command": shlex.join([PROG, *argv]),
        **{k: v for k, v in explicit.items() if v is not None},
    }  # fmt: skip
    content = args.content or default_photos_dir()
    if args.backbone is not None and args.backbone.lower() == NO_BACKBONE:
        backbone = None
    elif args.backbone is not None:
        backbone = find_backbone(args.output, args.backbone, args.variant)
    else:
        backbone = default_backbone(args.output, args.variant)
    if backbone is None:
        variant = args.variant or "full"
        return TrainConfig(args.style_image, content, args.name, variant=variant,
                           fine_tune=args.fine_tune, **common)  # fmt: skip
    return new_style_config(
        args.style_image, content, args.name, backbone.id, variant=backbone.variant,
        fine_tune=args.fine_tune, **common,
    )  # fmt: skip


def plan(args: argparse.Namespace, config: TrainConfig) -> TrainConfig:
    """Refuse a budget too small to converge; give a new style without a budget the steps that
    leave it live within minutes on this device; say how long the run should take."""
    from ..style_fit import check_budget
    from ..train_config import validate_config
    from ..train_plan import estimate_run, fitting_steps, measure_step_seconds

    validate_config(config)
    if config.backbone is not None:
        check_budget(config)  # a step budget's minimum, before any timing
    fit_budget = config.backbone is not None and args.steps is None and args.seconds is None
    if args.quiet and not fit_budget:
        return config
    rate = measure_step_seconds(config)
    if fit_budget:
        config = dataclasses.replace(config, steps=fitting_steps(config, rate))
    estimate = estimate_run(config, rate)
    what = {
        "norms": f"the new style's norms on backbone {config.backbone}",
        "fine_tune": f"a fine-tune of backbone {config.backbone}",
        "single": "a network of its own",
    }[estimate.mode]
    say(
        args,
        f"expected: about {duration(estimate.seconds)} on {estimate.device} ({what}: "
        f"{estimate.steps} steps of {estimate.size} px x {estimate.batch_size}, "
        f"{estimate.step_seconds:.2f} s each)",
    )
    return config


def duration(seconds: float) -> str:
    """'40 s', '4 min', '2 h 5 min'."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h {minutes % 60} min"
