"""`stylefusion stylize`: image files and folders through a style."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .common import STYLE_HELP, inference_options, positive_int
from .ui import progress_bar


def add(sub: Any) -> None:
    p = sub.add_parser("stylize", help="stylize image files or folders")
    p.add_argument("--style", required=True, metavar="NAME_OR_DIR", help=STYLE_HELP)
    p.add_argument("--input", type=Path, nargs="+", required=True, metavar="PATH",
                   help="image files and folders (searched recursively)")  # fmt: skip
    p.add_argument("--output", type=Path, required=True, metavar="DIR", help="<stem>-<style>.png")
    p.add_argument("--size", type=positive_int, metavar="N", help="longest side of the output")
    inference_options(p, style=True)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from ..style_folder import resolve_style
    from ..stylize_files import collect_images, stylize_images
    from ..stylizer import Stylizer

    collect_images(args.input)  # fail on a missing input before loading any model
    folder = resolve_style(args.style, args.models_dir)
    stylizer = Stylizer.from_style(folder, args.variant, args.device)
    with progress_bar(args.quiet, "stylize", "image") as bar:
        written = stylize_images(args.input, args.output, stylizer, args.size, args.strength, bar)
    for path in written:
        print(path)
    return 0
