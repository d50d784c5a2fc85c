"""`stylefusion video`: a clip into an H.264 MP4, sound kept."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..choices import CPU_CLIP_SIDE
from .common import STYLE_HELP, inference_options, positive_int, say
from .ui import interruptible, progress_bar


def add(sub: Any) -> None:
    p = sub.add_parser("video", help="stylize a clip into an H.264 MP4, sound kept")
    p.add_argument("input", type=Path, metavar="INPUT", help="a clip PyAV/FFmpeg can decode")
    p.add_argument("output", type=Path, metavar="OUTPUT", help="the MP4 to write")
    p.add_argument("--style", required=True, metavar="NAME_OR_DIR", help=STYLE_HELP)
    p.add_argument(
        "--max-side", type=side, metavar="N",
        help=f"scale the longest side down to N (default: {CPU_CLIP_SIDE} on a CPU, the clip's "
        "size on a GPU; 0 keeps the clip's size)",
    )  # fmt: skip
    p.add_argument("--batch-size", type=positive_int, default=4, metavar="N", help="default 4")
    p.add_argument("--crf", type=int, default=20, metavar="Q", help="x264 quality 0..51 (20)")
    p.add_argument(
        "--flow-blend", type=float, default=0.0, metavar="A",
        help="carry A (0..1, 1 excluded) of the previous stylized frame along the optical flow "
        "where it is reliable: steadier still regions, slight lag (default 0: off; try 0.7)",
    )  # fmt: skip
    inference_options(p, style=True)
    p.set_defaults(handler=run)


def side(text: str) -> int:
    """argparse type of --max-side: 0 (the clip's size) or a side of at least 16 pixels."""
    value = 0 if text.strip() == "0" else positive_int(text)
    if 0 < value < 16:
        raise argparse.ArgumentTypeError(f"expected 0 or at least 16 pixels, got {value}")
    return value


def run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from ..devices import default_clip_side, resolve_device
    from ..style_folder import resolve_style
    from ..video import VideoConfig, stylize_video

    max_side = args.max_side
    if max_side is None:
        max_side = default_clip_side(resolve_device(args.device))
    config = VideoConfig(
        style=resolve_style(args.style, args.models_dir),
        variant=args.variant,
        device=args.device,
        max_side=max_side or None,
        batch_size=args.batch_size,
        strength=args.strength,
        crf=args.crf,
        flow_blend=args.flow_blend,
    )
    with progress_bar(args.quiet, "video", "frame") as bar, interruptible() as cancel:
        result = stylize_video(args.input, args.output, config, progress=bar, cancel=cancel)
    sound = "with sound" if result.has_audio else "no sound"
    frames = f"{result.frames} frames of {result.width}x{result.height}"
    say(args, f"wrote {result.output} ({frames}, {sound}, {result.seconds:.1f} s)")
    return 0
