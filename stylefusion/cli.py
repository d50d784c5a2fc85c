"""The `stylefusion` command: train | stylize | video | render | bench (the only argparse)."""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from . import __version__
from .cli_ui import interruptible, progress_bar
from .devices import DEVICE_CHOICES
from .errors import Cancelled, StyleFusionError
from .renderer import OPTIMIZERS, RenderConfig
from .train_config import DEFAULT_STEPS, TrainConfig
from .transformer_net import VARIANTS

log = logging.getLogger("stylefusion")

PROG = "stylefusion"
STYLE_HELP = "a style name in --models-dir, or a style folder"
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """A bad command line; main() prints it as one line and exits with code 2."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors become one-line UsageErrors instead of usage dumps."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


# ---- argument types -------------------------------------------------------------------------


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of at least 1, got {value}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def unit_float(text: str) -> float:
    """argparse type: a number within 0..1 (strength)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in 0..1, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be within 0..1, got {text}")
    return value


def frame_size(text: str) -> tuple[int, int]:
    """argparse type: WxH, e.g. 320x240."""
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.isdigit() and int(p) >= 8 for p in parts):
        raise argparse.ArgumentTypeError(f"expected WxH like 320x240 (each >= 8), got {text!r}")
    return int(parts[0]), int(parts[1])


# ---- parser ---------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The full command-line interface, as in the contract."""
    parser = _Parser(prog=PROG, description="Neural style transfer: train, stylize, render.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _logging_options(parser, default=False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_train, _add_stylize, _add_video, _add_render, _add_bench):
        add(sub)
    for command in sub.choices.values():  # also accepted after the subcommand
        _logging_options(command, default=argparse.SUPPRESS)
    return parser


def _logging_options(p: argparse.ArgumentParser, default: Any) -> None:
    """--verbose / --quiet."""
    p.add_argument("-v", "--verbose", action="store_true", default=default, help="debug logging")
    p.add_argument("-q", "--quiet", action="store_true", default=default, help="no bars, warnings")


def _common(p: argparse.ArgumentParser, *, style: bool) -> None:
    """Options shared by the inference commands."""
    p.add_argument("--device", choices=DEVICE_CHOICES, default="auto")
    p.add_argument("--variant", choices=tuple(VARIANTS), help="default: full on GPU, lite on CPU")
    if style:
        p.add_argument("--strength", type=unit_float, default=1.0, help="0..1 (default 1)")
        p.add_argument("--models-dir", type=Path, default=Path("models"), metavar="DIR",
                       help="where named styles live (default models/)")  # fmt: skip


def _add_train(sub: Any) -> None:
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
    p.set_defaults(handler=_run_train)


def _add_stylize(sub: Any) -> None:
    p = sub.add_parser("stylize", help="stylize image files or folders")
    p.add_argument("--style", required=True, metavar="NAME_OR_DIR", help=STYLE_HELP)
    p.add_argument("--input", type=Path, nargs="+", required=True, metavar="PATH",
                   help="image files and folders (searched recursively)")  # fmt: skip
    p.add_argument("--output", type=Path, required=True, metavar="DIR", help="<stem>-<style>.png")
    p.add_argument("--size", type=positive_int, metavar="N", help="longest side of the output")
    _common(p, style=True)
    p.set_defaults(handler=_run_stylize)


def _add_video(sub: Any) -> None:
    p = sub.add_parser("video", help="stylize a clip into an H.264 MP4, sound kept")
    p.add_argument("input", type=Path, metavar="INPUT", help="a clip PyAV/FFmpeg can decode")
    p.add_argument("output", type=Path, metavar="OUTPUT", help="the MP4 to write")
    p.add_argument("--style", required=True, metavar="NAME_OR_DIR", help=STYLE_HELP)
    p.add_argument("--max-side", type=positive_int, metavar="N", help="scale down to this")
    p.add_argument("--batch-size", type=positive_int, default=4, metavar="N", help="default 4")
    p.add_argument("--crf", type=int, default=20, metavar="Q", help="x264 quality 0..51 (20)")
    _common(p, style=True)
    p.set_defaults(handler=_run_video)


def _add_render(sub: Any) -> None:
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
    p.set_defaults(handler=_run_render)


def _add_bench(sub: Any) -> None:
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
    _common(p, style=False)
    p.set_defaults(handler=_run_bench)


# ---- handlers -------------------------------------------------------------------------------


def _run_train(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from .content import default_photos_dir
    from .trainer import TrainConfig, train

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
    _say(args, f"trained {result.folder} ({result.steps} steps, {result.seconds:.0f} s)")
    return 0


def _run_stylize(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from .style_folder import resolve_style
    from .stylize_files import collect_images, stylize_images
    from .stylizer import Stylizer

    collect_images(args.input)  # fail on a missing input before loading any model
    folder = resolve_style(args.style, args.models_dir)
    stylizer = Stylizer.from_style(folder, args.variant, args.device)
    with progress_bar(args.quiet, "stylize", "image") as bar:
        written = stylize_images(args.input, args.output, stylizer, args.size, args.strength, bar)
    for path in written:
        print(path)
    return 0


def _run_video(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from .style_folder import resolve_style
    from .video import VideoConfig, stylize_video

    config = VideoConfig(
        style=resolve_style(args.style, args.models_dir),
        variant=args.variant,
        device=args.device,
        max_side=args.max_side,
        batch_size=args.batch_size,
        strength=args.strength,
        crf=args.crf,
    )
    with progress_bar(args.quiet, "video", "frame") as bar, interruptible() as cancel:
        result = stylize_video(args.input, args.output, config, progress=bar, cancel=cancel)
    sound = "with sound" if result.has_audio else "no sound"
    _say(args, f"wrote {result.output} ({result.frames} frames, {sound}, {result.seconds:.1f} s)")
    return 0


def _run_render(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from .renderer import RenderConfig, render

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
    _say(args, f"wrote {result.output} ({result.seconds:.1f} s)")
    return 0


def _run_bench(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from .bench import BenchConfig, run_bench
    from .style_folder import resolve_style

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


# ---- logging, errors, entry point ---------------------------------------------------------


def _configure_logging(verbose: bool, quiet: bool) -> None:
    """INFO to stderr by default, DEBUG with --verbose, warnings only with --quiet."""
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("stylefusion").setLevel(level)


def _say(args: argparse.Namespace, text: str) -> None:
    """A closing summary line on stderr (stdout stays free for data)."""
    if not args.quiet:
        print(text, file=sys.stderr)


def _fail(message: object, code: int = EXIT_USAGE, label: str = "error: ") -> int:
    """Print `stylefusion: error: message` as one line on stderr; return the exit code."""
    print(f"{PROG}: {label}{' '.join(str(message).split())}", file=sys.stderr)
    return code


Handler = Callable[[argparse.Namespace, Sequence[str]], int]


def _run(handler: Handler, args: argparse.Namespace, argv: list[str]) -> int:
    """Call a subcommand handler, turning expected failures into exit codes."""
    try:
        return handler(args, argv)
    except Cancelled as exc:
        return _fail(f"interrupted ({exc})", EXIT_INTERRUPTED, label="")
    except (StyleFusionError, OSError) as exc:
        return _fail(exc)
    except KeyboardInterrupt:
        return _fail("interrupted", EXIT_INTERRUPTED, label="")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 2 bad input, 130 interrupted)."""
    words = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(words)
    except UsageError as exc:
        return _fail(exc)
    except SystemExit as exc:  # --help and --version exit through argparse
        return int(exc.code or 0)
    _configure_logging(args.verbose, args.quiet)
    return _run(args.handler, args, words)
