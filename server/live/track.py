"""The outgoing video track: newest incoming frame in, its stylized version out."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from av import VideoFrame

from stylefusion.errors import StyleNotFound

from ..metrics import Metrics
from .batcher import Batcher, FrameResult
from .peers import Peer

log = logging.getLogger(__name__)


@dataclass
class _Job:
    """A camera frame handed to the batcher (result None: no style loaded, pass it through)."""

    frame: VideoFrame
    arrived: float  # perf_counter when the decoded frame reached the server
    result: asyncio.Future[FrameResult] | None


class StylizedTrack(MediaStreamTrack):
    """Reads the peer's camera continuously, keeps only the newest frame, returns it stylized.

    One frame per peer is with the batcher at a time. As soon as a result is handed to the
    encoder, the newest waiting frame goes to the batcher, so the model works while the
    sender encodes, and peers served in one batch come back together for the next one.
    """

    kind = "video"

    def __init__(
        self, source: MediaStreamTrack, peer: Peer, batcher: Batcher, metrics: Metrics
    ) -> None:
        super().__init__()
        self.source = source
        self.peer = peer
        self.batcher = batcher
        self.metrics = metrics
        self._newest: tuple[VideoFrame, float] | None = None  # (frame, arrival perf_counter)
        self._ready = asyncio.Event()
        self._source_ended = False
        self._job: _Job | None = None

    async def read_source(self) -> None:
        """Pull decoded frames as fast as they come; an unread older frame is dropped."""
        try:
            while True:
                frame = await self.source.recv()
                self.metrics.frames_in.inc()
                self.peer.frame_in(frame.width, frame.height)
                if self._newest is not None:
                    self.peer.frame_dropped()
                    self.metrics.frames_dropped.inc()
                self._newest = (frame, time.perf_counter())
                self._ready.set()
        except MediaStreamError:
            log.info("%s: incoming video ended", self.peer.id)
        finally:
            self._source_ended = True
            self._ready.set()

    async def recv(self) -> VideoFrame:
        """The newest camera frame, stylized, with its pts and time_base."""
        job, self._job = self._job, None
        if job is None:
            job = self._submit(*await self._wait_newest())
        out = await self._finish(job)
        if self._newest is not None:
            self._job = self._submit(*self._pop_newest())
        return out

    def _submit(self, frame: VideoFrame, arrived: float) -> _Job:
        """Hand a frame to the batcher in the peer's current style, strength and blend."""
        while True:
            try:
                peer = self.peer
                future = self.batcher.submit(peer.id, frame, peer.style, peer.strength, peer.blend)
                return _Job(frame, arrived, future)
            except StyleNotFound:
                if not self.peer.style_missing():
                    return _Job(frame, arrived, None)

    async def _finish(self, job: _Job) -> VideoFrame:
        """Wait for the job's result; copy pts/time_base; count it."""
        if job.result is None:
            return job.frame  # no style is loaded at all: pass the camera through
        result = await job.result
        out = result.frame
        out.pts, out.time_base = job.frame.pts, job.frame.time_base
        latency = time.perf_counter() - job.arrived
        self.metrics.frames_out.inc()
        self.metrics.server_latency.observe(latency)
        self.peer.frame_sent(result, latency)
        return out

    async def _wait_newest(self) -> tuple[VideoFrame, float]:
        while self._newest is None:
            if self._source_ended or self.readyState != "live":
                raise MediaStreamError
            self._ready.clear()
            await self._ready.wait()
        return self._pop_newest()

    def _pop_newest(self) -> tuple[VideoFrame, float]:
        newest, self._newest = self._newest, None
        assert newest is not None
        return newest
