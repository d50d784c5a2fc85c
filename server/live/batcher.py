"""Cross-stream batching: one inference thread owns the device and serves every peer.

Each peer has at most one pending frame (a newer one replaces it: newest wins) and, since
the thread runs one batch at a time, at most one frame in flight. The thread groups pending
frames by (network, height, width), waits up to max_wait for the other peers' frames, runs
one model call per group and hands each result back through an asyncio future that it
resolves with loop.call_soon_threadsafe, so the event loop never waits on the model.

Styles of one multi-style network share its Stylizer: a group holds frames of any of its
styles, each with its own norms (a blend of two styles is the lerp of their norms).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from av import VideoFrame

from stylefusion.errors import StyleNotFound
from stylefusion.stylizer import Stylizer

from ..errors import FrameDropped, TooManyRequests
from ..metrics import Metrics
from ..services import StyleRun
from .budget import CostModel

log = logging.getLogger(__name__)

GroupKey = tuple[int, int, int, bool]  # (the Stylizer's id, height, width, still)
Blend = tuple[str, float]  # (second style, amount 0..1) mixed into a frame's style
Fit = Callable[[int, int], tuple[int, int]]  # (width, height) -> the size the model gets
STILL_RETRY_S = 2  # a snapshot refused while another is painted: try again after this


@dataclass(frozen=True)
class FrameResult:
    """A stylized frame and how it was made."""

    frame: VideoFrame  # rgb24, pts not set
    style: str
    variant: str
    batch_size: int
    queue_s: float
    inference_s: float
    blend: Blend | None = None  # the blend the frame was painted with, if any


@dataclass
class _Request:
    peer: str
    frame: VideoFrame
    style: str
    stylizer: Stylizer
    strength: float
    norms: torch.Tensor | None  # (P,) the style's (or the blend's) norms; None: single style
    blend: Blend | None
    future: asyncio.Future[FrameResult]
    loop: asyncio.AbstractEventLoop
    size: tuple[int, int]  # (width, height) the model runs at: the frame's, capped
    still: bool = False  # a one-off picture (a snapshot): its own call, eager, not costed
    submitted: float = field(default_factory=time.perf_counter)

    @property
    def key(self) -> GroupKey:
        return (id(self.stylizer), self.size[1], self.size[0], self.still)

    def image(self) -> np.ndarray:
        """The frame as (H, W, 3) uint8 RGB, downscaled if it is larger than the cap."""
        width, height = self.size
        if (width, height) == (self.frame.width, self.frame.height):
            return self.frame.to_ndarray(format="rgb24")
        return self.frame.to_ndarray(format="rgb24", width=width, height=height)


class Batcher:
    """Collects the newest frame of every peer and stylizes them in batched model calls."""

    def __init__(
        self,
        lookup: Callable[[str], StyleRun],
        max_batch: int = 8,
        max_wait_s: float = 0.005,
        metrics: Metrics | None = None,
        costs: CostModel | None = None,
        fit: Fit | None = None,
        max_stills: int = 1,
    ) -> None:
        """fit caps frame sizes (frames above the send budget are downscaled before the
        model); costs learns the model's time per frame size from every call; max_stills:
        one-off pictures (snapshots) waiting or painted at once."""
        self.lookup = lookup
        self.max_batch = max(1, max_batch)
        self.max_wait_s = max(0.0, max_wait_s)
        self.metrics = metrics
        self.costs = costs or CostModel()
        self.fit: Fit = fit or (lambda width, height: (width, height))
        self.batch_sizes: collections.Counter[int] = collections.Counter()
        self._pending: dict[str, _Request] = {}
        self._peers: set[str] = set()
        self._cond = threading.Condition()
        self._stills = itertools.count()
        self.max_stills = max_stills
        self.stills_busy = 0  # on the event loop only
        self._stopping = False
        self._last_done = 0.0  # perf_counter at the end of the last model call
        self._thread = threading.Thread(target=self._run, name="inference", daemon=True)

    @property
    def running(self) -> bool:
        """Whether the inference thread is alive."""
        return self._thread.is_alive()

    def start(self) -> None:
        """Start the inference thread."""
        self._thread.start()

    async def stop(self) -> None:
        """Stop the thread (after its current batch) and cancel the frames still waiting."""
        with self._cond:
            self._stopping = True
            pending, self._pending = list(self._pending.values()), {}
            self._cond.notify_all()
        for request in pending:
            request.future.cancel()
        if self._thread.is_alive():
            await asyncio.to_thread(self._thread.join)

    def add_peer(self, peer: str) -> None:
        """Announce a live peer: a batch waits (up to max_wait) for every live peer's frame."""
        with self._cond:
            self._peers.add(peer)

    def remove_peer(self, peer: str) -> None:
        """Forget a peer and drop its pending frame."""
        with self._cond:
            self._peers.discard(peer)
            request = self._pending.pop(peer, None)
            self._cond.notify_all()
        if request is not None:
            request.future.cancel()

    def submit(
        self,
        peer: str,
        frame: VideoFrame,
        style: str,
        strength: float = 1.0,
        blend: Blend | None = None,
    ) -> asyncio.Future[FrameResult]:
        """Queue a peer's frame (replacing its older pending one); call from the event loop.

        `blend` mixes a second style of the same network in (its norms lerped with the
        style's); one of another network, or gone, is left out. Raises StyleNotFound at once
        if the style is not loaded.
        """
        loop = asyncio.get_running_loop()
        run, size = self.lookup(style), self.fit(frame.width, frame.height)
        norms, blend = self._blended(run, blend)
        request = _Request(
            peer, frame, style, run.stylizer, strength, norms, blend, loop.create_future(),
            loop, size,
        )  # fmt: skip
        return self._queue(request)

    def _blended(
        self, run: StyleRun, blend: Blend | None
    ) -> tuple[torch.Tensor | None, Blend | None]:
        """A frame's norms with the blend applied, and the blend if it could be."""
        if blend is None or blend[1] <= 0.0:
            return run.norms, None
        try:
            other = self.lookup(blend[0])
        except StyleNotFound:
            return run.norms, None
        if other.network != run.network:
            return run.norms, None
        if run.norms is None or other.norms is None:  # one single-style network: itself
            return run.norms, blend
        return torch.lerp(run.norms, other.norms, blend[1]), blend

    def paint_still(
        self, frame: VideoFrame, style: str, strength: float = 1.0
    ) -> asyncio.Future[FrameResult]:
        """Queue one picture at its own size (a snapshot); call from the event loop.

        It runs on the inference thread like the viewers' frames (that thread owns the model
        and the device), in a model call of its own between their batches: eager, since one
        odd size is not worth compiling, and left out of the costs the send budget learns.
        """
        self.check_still_room()
        loop = asyncio.get_running_loop()
        run = self.lookup(style)
        request = _Request(
            f"still-{next(self._stills)}",
            frame,
            style,
            run.stylizer,
            strength,
            run.norms,
            None,
            loop.create_future(),
            loop,
            (frame.width, frame.height),
            still=True,
        )
        future = self._queue(request)
        self.stills_busy += 1
        future.add_done_callback(self._still_done)
        return future

    def check_still_room(self) -> None:
        """TooManyRequests while max_stills pictures wait or are being painted."""
        if self.stills_busy >= self.max_stills:
            raise TooManyRequests("another snapshot is being painted; try again", STILL_RETRY_S)

    def _still_done(self, future: asyncio.Future[FrameResult]) -> None:
        self.stills_busy -= 1

    def _queue(self, request: _Request) -> asyncio.Future[FrameResult]:
        """Make `request` its peer's pending frame, replacing (dropping) an older one."""
        peer = request.peer
        with self._cond:
            if self._stopping:
                raise RuntimeError("the batcher is stopped")
            older = self._pending.pop(peer, None)
            self._pending[peer] = request
            self._cond.notify_all()
        if older is not None:
            older.future.set_exception(FrameDropped("replaced by a newer frame"))
            if self.metrics:
                self.metrics.frames_dropped.inc()
        return request.future

    def _run(self) -> None:
        while True:
            try:
                batch = self._next_batch()
            except Exception:  # noqa: BLE001 - a dead inference thread would freeze every stream
                log.exception("the batcher failed to form a batch")
                time.sleep(0.01)
                continue
            if batch is None:
                return
            self._process(batch)

    def _next_batch(self) -> list[_Request] | None:
        """Block until a batch is ready: full, every peer's frame is in, or max_wait passed."""
        with self._cond:
            while not self._stopping:
                if not self._pending:
                    self._cond.wait()
                    continue
                group = self._oldest_group()
                wait_s = self._wait_time(group)
                if wait_s <= 0:
                    batch = group[: self.max_batch]
                    for request in batch:
                        del self._pending[request.peer]
                    return batch
                self._cond.wait(wait_s)
            return None

    def _wait_time(self, group: list[_Request]) -> float:
        """Seconds still worth waiting for other peers' frames to join the group (<= 0: go).

        Counted from the later of the oldest frame's arrival and the end of the last call:
        the peers served by that call send their next frame as soon as they get the result,
        so a frame that waited through it still meets them (else two peers fall into turns,
        one frame per call each, and never share a call once the model is the bottleneck).
        """
        expected = len(self._peers | self._pending.keys())
        if len(group) >= self.max_batch or len(self._pending) >= expected:
            return 0.0
        since = max(group[0].submitted, self._last_done)
        return since + self.max_wait_s - time.perf_counter()

    def _oldest_group(self) -> list[_Request]:
        """Pending requests sharing the oldest request's key, oldest first."""
        ordered = sorted(self._pending.values(), key=lambda r: r.submitted)
        key = ordered[0].key
        return [r for r in ordered if r.key == key]

    def _process(self, batch: list[_Request]) -> None:
        """One model call for the batch; results or the error go back to each future."""
        start = time.perf_counter()
        try:
            images = np.stack([r.image() for r in batch])  # (B, H, W, 3) uint8
            norms = _stacked([r.norms for r in batch])
            strengths = [r.strength for r in batch]
            stylizer = batch[0].stylizer
            styled = stylizer(images, strength=strengths, norms=norms, eager=batch[0].still)
            frames = [VideoFrame.from_ndarray(image, format="rgb24") for image in styled]
        except Exception as exc:  # noqa: BLE001 - the thread must survive any bad batch
            log.exception("model call for %d frame(s) of %s failed", len(batch), batch[0].style)
            for request in batch:
                _settle(request, None, exc)
            return
        elapsed = time.perf_counter() - start
        self._last_done = start + elapsed
        self._record(batch, start, elapsed)
        for request, frame in zip(batch, frames, strict=True):
            result = FrameResult(
                frame=frame,
                style=request.style,
                variant=request.stylizer.variant,
                batch_size=len(batch),
                queue_s=start - request.submitted,
                inference_s=elapsed,
                blend=request.blend,
            )
            _settle(request, result, None)

    def _record(self, batch: list[_Request], start: float, elapsed: float) -> None:
        if batch[0].still:
            return  # an eager one-off: neither the budget's cost nor the viewers' statistics
        self.batch_sizes[len(batch)] += 1
        self.costs.observe(*batch[0].size, len(batch), elapsed)
        if self.metrics is None:
            return
        self.metrics.batch_size.observe(len(batch))
        self.metrics.batch_styles.observe(len({r.style for r in batch}))
        self.metrics.inference.observe(elapsed)
        for request in batch:
            self.metrics.queue_wait.observe(start - request.submitted)


def _stacked(norms: list[torch.Tensor | None]) -> torch.Tensor | None:
    """(B, P) norms of a batch of one multi-style network; None for a single-style one."""
    if norms[0] is None:
        return None
    return torch.stack(norms)  # type: ignore[arg-type]


def _settle(request: _Request, result: FrameResult | None, exc: BaseException | None) -> None:
    """Resolve a request's future from the inference thread, on its event loop."""

    def settle() -> None:
        if request.future.done():
            return
        if exc is not None:
            request.future.set_exception(exc)
        else:
            request.future.set_result(result)  # type: ignore[arg-type]

    with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
        request.loop.call_soon_threadsafe(settle)
