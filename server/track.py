"""The outgoing video track: newest incoming frame in, its stylized version out."""

from __future__ import annotations

import asyncio
import logging
import time

from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from av import VideoFrame

from stylefusion.errors import StyleNotFound

from .batcher import Batcher, FrameResult
from .metrics import Metrics
from .peers import Peer

log = logging.getLogger(__name__)


class StylizedTrack(MediaStreamTrack):
    """Reads the peer's camera continuously, keeps only the newest frame, returns it stylized."""

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

    async def read_source(self) -> None:
        """Pull decoded frames as fast as they come; an unread older frame is dropped."""
        try:
            while True:
                frame = await self.source.recv()
                self.metrics.frames_in.inc()
                self.peer.stats.frames_in += 1
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
        frame, arrived = await self._take_newest()
        result = await self._stylize(frame)
        if result is None:
            return frame  # no style is loaded at all: pass the camera through
        out = result.frame
        out.pts, out.time_base = frame.pts, frame.time_base
        latency = time.perf_counter() - arrived
        self.metrics.frames_out.inc()
        self.metrics.server_latency.observe(latency)
        self.peer.frame_sent(result, latency)
        return out

    async def _stylize(self, frame: VideoFrame) -> FrameResult | None:
        """Hand the frame to the batcher in the peer's current style and strength."""
        while True:
            try:
                return await self.batcher.submit(
                    self.peer.id, frame, self.peer.style, self.peer.strength
                )
            except StyleNotFound:
                if not self.peer.style_missing():
                    return None

    async def _take_newest(self) -> tuple[VideoFrame, float]:
        while self._newest is None:
            if self._source_ended or self.readyState != "live":
                raise MediaStreamError
            self._ready.clear()
            await self._ready.wait()
        newest, self._newest = self._newest, None
        return newest
