"""Start-up: measure the model's cost and compile the frame shapes the budget will ask for.

Compiling a new shape takes seconds of CPU; doing it while viewers watch starves them. So
before the server takes viewers it times the model at a probe size, compiles the shapes the
send budget gives one viewer, and queues the shapes of more viewers on the compile thread
(which runs at low priority). A restart finds the compiled kernels in the on-disk cache.
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
    """Time the probe, compile and time the first viewer's shapes, queue the others (blocking).

    The first stylizer (the default style) is measured; the other styles share its graphs,
    so theirs are queued on the compile thread, which makes them ready in a fraction.
    """
    if not stylizers:
        return
    start = time.perf_counter()
    stylizer = stylizers[0]
    time_shape(stylizer, planner, PROBE[1], PROBE[0])
    boxes = budget_boxes(planner, max_peers)
    for height, width in box_shapes(boxes[0]):
        for batch in stylizer.batch_shapes(max_batch):
            stylizer.warm_up(height, width, batch)  # waits for the compiled graph
        time_shape(stylizer, planner, height, width)
    for box, other in [(b, stylizer) for b in boxes[1:]] + [(boxes[0], s) for s in stylizers[1:]]:
        for height, width in box_shapes(box):
            for batch in other.batch_shapes(max_batch):
                other.warm_up(height, width, batch, compiled=False)  # compiles meanwhile
    planner.update()
    log.info(
        "model ready in %.1f s; budget for one viewer %s; shapes queued for %s",
        time.perf_counter() - start,
        planner.for_newcomer(),
        boxes[1:],
    )


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
    """Time a few single-frame calls of a shape (compiled first if compiling) into the costs."""
    stylizer.warm_up(height, width, 1)
    frames = np.zeros((1, height, width, 3), np.uint8)
    for _ in range(TIMED_CALLS):
        start = time.perf_counter()
        stylizer(frames)
        planner.costs.observe(width, height, 1, time.perf_counter() - start)
