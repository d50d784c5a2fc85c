"""Start-up: learn the model's cost and queue the frame shapes the budget will ask for.

Compiling a frame shape takes seconds warm and a minute or more cold (an int8 package), so no
viewer waits for it: start-up only times the eager model at a probe size (a second), and the
server takes viewers at once. Eager serves every shape until its compiled version is ready; the
shapes the send budget gives 1..max_peers viewers are queued on the compile thread, which runs
at low priority, and each frame size switches over when its build lands. The batcher keeps
measuring every call, so the budget follows a size's cost down when its package takes over.
A restart finds the compiled kernels in the on-disk cache.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from stylefusion.stylizer import Stylizer

from .budget import BudgetPlanner, box_shapes, plan

log = logging.getLogger(__name__)

PROBE = (320, 240)  # (width, height) timed first, to learn the model's cost per pixel
TIMED_CALLS = 3


def prepare(
    stylizers: list[Stylizer], planner: BudgetPlanner, max_peers: int, max_batch: int
) -> None:
    """Time the default style's eager model at the probe size and queue the shapes to build.

    Blocks for a few eager calls. The first stylizer (the default style) is measured; the
    other styles run the same network, so they cost the same.
    """
    if not stylizers:
        return
    start = time.perf_counter()
    time_shape(stylizers[0], planner, PROBE[1], PROBE[0])
    planner.update()
    queued = compile_ahead(stylizers, planner, max_peers, max_batch)
    log.info(
        "model timed in %.1f s; budget for one viewer %s; %d shape(s) to build meanwhile",
        time.perf_counter() - start,
        planner.for_newcomer(),
        queued,
    )


def compile_ahead(
    stylizers: list[Stylizer], planner: BudgetPlanner, max_peers: int, max_batch: int
) -> int:
    """Queue the shapes the budget picks for 1..max_peers viewers at the current costs
    (the default style's, and one viewer's of the other styles); returns the builds pending.

    Cheap when they are queued already: call it again as costs change (builds landing make
    larger sizes affordable, whose shapes then build ahead of the budget asking for them).
    """
    if not stylizers:
        return 0
    boxes = budget_boxes(planner, max_peers)
    wanted = [(box, stylizers[0]) for box in boxes] + [(boxes[0], s) for s in stylizers[1:]]
    for box, stylizer in wanted:
        for height, width in box_shapes(box):
            for batch in stylizer.batch_shapes(max_batch):
                stylizer.compile_ahead(height, width, batch)
    return sum(s.builds_pending() for s in stylizers)


def budget_boxes(planner: BudgetPlanner, max_peers: int) -> list[tuple[int, int]]:
    """The distinct boxes the budget picks for 1..max_peers viewers, one viewer's first."""
    boxes: list[tuple[int, int]] = []
    for viewers in range(1, max(1, max_peers) + 1):
        budget, _ = plan(planner.costs, viewers, planner.ladder)
        box = (budget.max_width, budget.max_height)
        if box not in boxes:
            boxes.append(box)
    return boxes


def time_shape(stylizer: Stylizer, planner: BudgetPlanner, height: int, width: int) -> None:
    """Time a few single-frame eager calls of a shape (after one untimed) into the costs."""
    frames = np.zeros((1, height, width, 3), np.uint8)
    stylizer(frames, eager=True)  # the first call of a shape sets up its kernels
    for _ in range(TIMED_CALLS):
        start = time.perf_counter()
        stylizer(frames, eager=True)
        planner.costs.observe(width, height, 1, time.perf_counter() - start)
