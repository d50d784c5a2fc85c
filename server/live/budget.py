"""The send budget: what size and frame rate each page should send, from cost and load.

The model's cost per frame grows with the frame's pixels; the inference thread serves every
viewer in turn. So with N viewers at F fps and C seconds per frame, the thread is busy
N * F * C of every second. The planner picks the largest size of a fixed ladder that still
gives every viewer at least MIN_FPS within a share of the thread's time, and the highest
frame rate that size allows. Pages apply it to their sender; the batcher downscales frames
that arrive larger anyway, so one big camera cannot stall the other viewers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

log = logging.getLogger(__name__)

# bounding boxes (width, height) a page may be asked to fit in, largest first
LADDER: tuple[tuple[int, int], ...] = (
    (1280, 720),
    (960, 540),
    (640, 480),
    (480, 360),
    (320, 240),
    (240, 180),
    (160, 120),
)
FPS_STEPS = (30, 25, 20, 15, 12, 10, 8, 6, 5)
MIN_FPS = 12  # below this a size is not offered while a smaller one reaches it
SHARE = 0.75  # of the inference thread's time; the rest absorbs codecs and jitter
RAISE_MARGIN = 1.2  # a larger budget with the same viewers needs 20% headroom (no flapping)


@dataclass(frozen=True)
class Budget:
    """What each page should send at most."""

    max_width: int
    max_height: int
    max_fps: int

    def message(self) -> dict[str, object]:
        """The control-channel event `{"event": "budget", ...}`."""
        return {
            "event": "budget",
            "max_width": self.max_width,
            "max_height": self.max_height,
            "max_fps": self.max_fps,
        }

    def fit(self, width: int, height: int) -> tuple[int, int]:
        """A frame's size scaled down (aspect kept, even sides) to fit the box; never up."""
        scale = min(self.max_width / width, self.max_height / height)
        if scale >= 1.0:
            return width, height
        return max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)


def box_shapes(box: tuple[int, int]) -> list[tuple[int, int]]:
    """The (height, width) frames a box yields for 4:3 and 16:9 cameras (what gets compiled)."""
    budget = Budget(box[0], box[1], 30)
    shapes = {budget.fit(640, 480), budget.fit(1280, 720)}
    return sorted(((h, w) for w, h in shapes), reverse=True)


class CostModel:
    """Seconds of model time per frame, per frame size, learnt from the batcher's calls.

    A size measured in the last FRESH_S seconds answers for itself; any other size is
    estimated from the latest cost per pixel, so a cost measured under a passing load does
    not keep a size out of the budget once frames of that size stop coming.
    """

    FRESH_S = 10.0

    def __init__(self, seconds_per_megapixel: float = 0.25, smoothing: float = 0.2) -> None:
        self.seconds_per_pixel = seconds_per_megapixel / 1e6  # a prior, until measured
        self.smoothing = smoothing
        self._per_frame: dict[tuple[int, int], tuple[float, float]] = {}  # size -> (s, when)
        self._measured = False
        self._lock = threading.Lock()

    def observe(self, width: int, height: int, frames: int, seconds: float) -> None:
        """Record one model call of `frames` frames of a size (from the inference thread)."""
        per_frame, now = seconds / max(1, frames), time.monotonic()
        with self._lock:
            old = self._per_frame.get((width, height))
            new = per_frame if old is None else _ease(old[0], per_frame, self.smoothing)
            self._per_frame[(width, height)] = (new, now)
            per_pixel = per_frame / (width * height)
            self.seconds_per_pixel = (
                _ease(self.seconds_per_pixel, per_pixel, self.smoothing)
                if self._measured
                else per_pixel
            )
            self._measured = True

    def per_frame(self, width: int, height: int) -> float:
        """Estimated seconds per frame: measured lately, else from the cost per pixel."""
        with self._lock:
            measured = self._per_frame.get((width, height))
            if measured is not None and time.monotonic() - measured[1] < self.FRESH_S:
                return measured[0]
            return self.seconds_per_pixel * width * height


def _ease(old: float, new: float, smoothing: float) -> float:
    return old + smoothing * (new - old)


def plan(
    costs: CostModel,
    viewers: int,
    ladder: Iterable[tuple[int, int]] = LADDER,
    margin: float = 1.0,
) -> tuple[Budget, float]:
    """The largest box that gives `viewers` at least MIN_FPS each; returns it and its fps.

    margin > 1 plans as if frames cost that much more (headroom).
    """
    viewers = max(1, viewers)
    boxes = list(ladder)
    for box in boxes:
        fps = SHARE / (viewers * costs.per_frame(*box) * margin)
        if fps >= MIN_FPS or box == boxes[-1]:
            steps = [s for s in FPS_STEPS if s <= fps] or [FPS_STEPS[-1]]
            return Budget(box[0], box[1], steps[0]), fps
    raise ValueError("empty ladder")


class BudgetPlanner:
    """Keeps the current budget for the live viewer count; re-plans on joins, leaves, ticks.

    `settled(box)` says whether a box's frame sizes run as they will for good (their compiled
    version is built, or none is coming). The budget grows only into settled boxes: costs are
    learnt from the package serving a size, and a larger size still served eager meanwhile
    would cost more than planned (the budget would drop back, then grow again: flapping).
    """

    def __init__(
        self,
        costs: CostModel,
        ladder: tuple[tuple[int, int], ...] = LADDER,
        settled: Callable[[tuple[int, int]], bool] | None = None,
    ) -> None:
        self.costs = costs
        self.ladder = ladder
        self.settled = settled or (lambda box: True)
        self.viewers = 0
        self.current, _ = plan(costs, 1, ladder)

    def for_newcomer(self) -> Budget:
        """The budget a page about to join would get (its default camera size)."""
        return plan(self.costs, self.viewers + 1, self._open_ladder())[0]

    def update(self, viewers: int | None = None) -> bool:
        """Re-plan (for a new viewer count, if given); True if the budget changed."""
        joined_or_left = viewers is not None and viewers != self.viewers
        if viewers is not None:
            self.viewers = viewers
        ladder = self._open_ladder()
        budget, fps = plan(self.costs, self.viewers, ladder)
        if not joined_or_left and _larger(budget, self.current):
            # same load: only grow with headroom, so noise in the cost cannot make it flap
            budget, fps = plan(self.costs, self.viewers, ladder, RAISE_MARGIN)
            if not _larger(budget, self.current):
                return False
        if budget == self.current:
            return False
        log.info("send budget now %s (%d viewer(s), %.1f fps possible)", budget, self.viewers, fps)
        self.current = budget
        return True

    def _open_ladder(self) -> tuple[tuple[int, int], ...]:
        """The boxes the budget may pick now: the current one and smaller, larger settled ones."""
        area = self.current.max_width * self.current.max_height
        return tuple(b for b in self.ladder if b[0] * b[1] <= area or self.settled(b))


def _larger(a: Budget, b: Budget) -> bool:
    return (a.max_width * a.max_height, a.max_fps) > (b.max_width * b.max_height, b.max_fps)
