"""The `stylefusion` command: train | stylize | video | render | bench (the only argparse).

One module per subcommand (its options and its handler); common.py holds the parser that turns
errors into one line, the argument types and the exit codes.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from .. import __version__
from ..errors import Cancelled, StyleFusionError
from . import bench, render, stylize, train, video
from .common import (
    EXIT_INTERRUPTED,
    PROG,
    Parser,
    UsageError,
    configure_logging,
    fail,
    logging_options,
)

log = logging.getLogger("stylefusion")

COMMANDS = (train, stylize, video, render, bench)


def build_parser() -> argparse.ArgumentParser:
    """The full command-line interface, as in the contract."""
    parser = Parser(prog=PROG, description="Neural style transfer: train, stylize, render.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    logging_options(parser, default=False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add(sub)
    for command_parser in sub.choices.values():  # also accepted after the subcommand
        logging_options(command_parser, default=argparse.SUPPRESS)
    return parser


Handler = Callable[[argparse.Namespace, Sequence[str]], int]


def _run(handler: Handler, args: argparse.Namespace, argv: list[str]) -> int:
    """Call a subcommand handler, turning expected failures into exit codes."""
    try:
        return handler(args, argv)
    except Cancelled as exc:
        return fail(f"interrupted ({exc})", EXIT_INTERRUPTED, label="")
    except (StyleFusionError, OSError) as exc:
        return fail(exc)
    except KeyboardInterrupt:
        return fail("interrupted", EXIT_INTERRUPTED, label="")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 2 bad input, 130 interrupted)."""
    words = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(words)
    except UsageError as exc:
        return fail(exc)
    except SystemExit as exc:  # --help and --version exit through argparse
        return int(exc.code or 0)
    configure_logging(args.verbose, args.quiet)
    return _run(args.handler, args, words)
