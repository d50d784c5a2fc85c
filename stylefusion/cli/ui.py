"""The terminal side of the CLI: tqdm bars fed by Progress reports, and Ctrl-C as a cancel flag."""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Iterator

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from ..progress import Progress, ProgressCallback

log = logging.getLogger("stylefusion")


def bar_postfix(command: str, report: Progress) -> dict[str, str]:
    """What a bar shows besides the count: losses for train/render, fps for video."""
    if command == "train":
        keys = ("loss", "content", "style", "tv")
        return {k: f"{report.metrics[k]:.3g}" for k in keys if k in report.metrics}
    if command == "render" and "loss" in report.metrics:
        return {"loss": f"{report.metrics['loss']:.4g}"}
    if command == "video" and report.rate:
        return {"fps": f"{report.rate:.1f}"}
    return {}


@contextlib.contextmanager
def progress_bar(quiet: bool, command: str, unit: str) -> Iterator[ProgressCallback | None]:
    """A tqdm bar on stderr fed by Progress reports (None when --quiet).

    The bar appears with the first report, so a command that fails early prints only its error.
    """
    if quiet:
        yield None
        return
    bars: list[tqdm] = []

    def update(report: Progress) -> None:
        if not bars:
            bars.append(tqdm(desc=command, unit=unit, file=sys.stderr, dynamic_ncols=True))
        bar = bars[0]
        bar.total = report.total
        postfix = bar_postfix(command, report)
        if postfix:
            bar.set_postfix(postfix, refresh=False)
        bar.update(max(0, report.done - bar.n))

    try:
        with logging_redirect_tqdm(loggers=[logging.getLogger()]):
            yield update
    finally:
        for bar in bars:
            bar.close()


@contextlib.contextmanager
def interruptible() -> Iterator[threading.Event]:
    """A cancel flag set by the first Ctrl-C (clean stop); a second Ctrl-C aborts at once."""
    flag = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def on_sigint(signum: int, frame: object) -> None:
        if flag.is_set():
            raise KeyboardInterrupt
        flag.set()
        log.warning("stopping cleanly; press Ctrl-C again to abort at once")

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)
