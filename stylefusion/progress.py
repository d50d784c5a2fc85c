"""Progress reports and cancel flags shared by the trainer, renderer and video pipeline."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from .errors import Cancelled

if TYPE_CHECKING:  # numpy only names a type here: `stylefusion --help` loads none of it
    import numpy as np


@dataclass(frozen=True)
class Progress:
    """One progress report: `done` of `total` units, with optional metrics and preview."""

    done: int
    total: int
    eta_s: float | None = None
    rate: float | None = None  # units per second
    metrics: dict[str, float] = field(default_factory=dict)
    preview: np.ndarray | None = None  # (H, W, 3) uint8 RGB

    @property
    def fraction(self) -> float:
        """Progress in 0..1."""
        return 0.0 if self.total <= 0 else min(1.0, self.done / self.total)


ProgressCallback = Callable[[Progress], None]


class CancelFlag(Protocol):
    """Anything with is_set(): threading.Event, multiprocessing.Event, ..."""

    def is_set(self) -> bool: ...


def check_cancel(cancel: CancelFlag | None) -> None:
    """Raise Cancelled if the flag is set."""
    if cancel is not None and cancel.is_set():
        raise Cancelled("cancelled")


class RateMeter:
    """Tracks units per second and the ETA of a run of known length."""

    def __init__(self, total: int, start_done: int = 0) -> None:
        self.total = total
        self.start_done = start_done
        self.started = time.monotonic()

    def report(self, done: int) -> tuple[float | None, float | None]:
        """Return (rate, eta_s) after `done` units."""
        elapsed = time.monotonic() - self.started
        units = done - self.start_done
        if units <= 0 or elapsed <= 0:
            return None, None
        rate = units / elapsed
        return rate, max(0.0, (self.total - done) / rate)
