"""What every subcommand shares: the one-line-error parser, argument types, options, output."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any, NoReturn

from ..architecture import VARIANTS
from ..choices import DEVICE_CHOICES

PROG = "stylefusion"
STYLE_HELP = "a style name in --models-dir, or a style folder"
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """A bad command line; main() prints it as one line and exits with code 2."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors become one-line UsageErrors instead of usage dumps."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


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


def logging_options(p: argparse.ArgumentParser, default: Any) -> None:
    """--verbose / --quiet."""
    p.add_argument("-v", "--verbose", action="store_true", default=default, help="debug logging")
    p.add_argument("-q", "--quiet", action="store_true", default=default, help="no bars, warnings")


def inference_options(p: argparse.ArgumentParser, *, style: bool) -> None:
    """Options shared by the inference commands."""
    p.add_argument("--device", choices=DEVICE_CHOICES, default="auto")
    p.add_argument("--variant", choices=tuple(VARIANTS), help="default: full on GPU, lite on CPU")
    if style:
        p.add_argument("--strength", type=unit_float, default=1.0, help="0..1 (default 1)")
        p.add_argument("--models-dir", type=Path, default=Path("models"), metavar="DIR",
                       help="where named styles live (default models/)")  # fmt: skip


def configure_logging(verbose: bool, quiet: bool) -> None:
    """INFO to stderr by default, DEBUG with --verbose, warnings only with --quiet."""
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("stylefusion").setLevel(level)


def say(args: argparse.Namespace, text: str) -> None:
    """A closing summary line on stderr (stdout stays free for data)."""
    if not args.quiet:
        print(text, file=sys.stderr)


def fail(message: object, code: int = EXIT_USAGE, label: str = "error: ") -> int:
    """Print `stylefusion: error: message` as one line on stderr; return the exit code."""
    print(f"{PROG}: {label}{' '.join(str(message).split())}", file=sys.stderr)
    return code
