"""Named streams: one publisher stylized once, fanned out to many watchers.

    publisher (WHIP) -> StylizedTrack (newest frame) -> batcher -> Fanout -> watcher outlets

The publisher is a Peer like any /offer viewer (it counts towards --max-peers and the send
budget, its frames go through the batcher once); its watchers are Sessions that cost an
encoder each and no model time. A stream ends with its publisher, and ends its watchers.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import re
import time
from collections.abc import Iterator
from typing import Any, ClassVar

from aiortc import MediaStreamTrack, RTCPeerConnection
from av.frame import Frame

from ..errors import AtCapacity, BadRequest, Conflict, NotFound
from ..metrics import Metrics
from .peers import Peer
from .relay import AUDIO_DEPTH, Fanout, Outlet, audio_copies, video_copies
from .session import Session

log = logging.getLogger(__name__)

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
RATE_WINDOW_S = 2.0


def check_name(name: str) -> str:
    """A stream name (letters, digits, '-', '_', '.'; up to 64), or BadRequest."""
    if not NAME.fullmatch(name):
        raise BadRequest(
            f"bad stream name {name[:80]!r}: use up to 64 letters, digits, '-', '_' or '.'"
        )
    return name


class FrameRate:
    """Frames per second over the last RATE_WINDOW_S seconds."""

    def __init__(self) -> None:
        self._times: collections.deque[float] = collections.deque()

    def tick(self) -> None:
        """Count one frame now."""
        now = time.monotonic()
        self._times.append(now)
        self._trim(now)

    def fps(self) -> float:
        """The rate over the window that ends now."""
        self._trim(time.monotonic())
        return round(len(self._times) / RATE_WINDOW_S, 1)

    def _trim(self, now: float) -> None:
        while self._times and self._times[0] < now - RATE_WINDOW_S:
            self._times.popleft()


class Watcher(Session):
    """One WHEP viewer of a stream: its connection and the outlets its senders read."""

    prefix: ClassVar[str] = "watcher"
    _ids: ClassVar[itertools.count[int]] = itertools.count(1)

    def __init__(self, pc: RTCPeerConnection, stream: Stream) -> None:
        super().__init__(pc)
        self.stream = stream
        self.outlets: list[Outlet] = []

    def subscribe(self) -> list[Outlet]:
        """Outlets of the stream's video and (if it has any) audio, for this watcher's senders."""
        self.outlets = [self.stream.video.subscribe()]
        if self.stream.has_audio:
            self.outlets.append(self.stream.audio.subscribe())
        return self.outlets


class Stream:
    """A published camera: the publisher, its video and audio fan-outs, its watchers."""

    def __init__(self, name: str, metrics: Metrics) -> None:
        self.name = name
        self.publisher: Peer | None = None  # set once the publisher's offer is answered
        self.metrics = metrics
        skipped = metrics.stream_skipped.labels(name)
        self.video = Fanout("video", 1, video_copies, in_thread=True, on_drop=skipped.inc)
        self.audio = Fanout("audio", AUDIO_DEPTH, audio_copies)
        self.has_audio = False
        self.watchers: dict[str, Watcher] = {}
        self.rate = FrameRate()
        self.size = ""  # WxH of the newest stylized frame
        self.ended = False
        self._frames = metrics.stream_frames.labels(name)

    async def carry_video(self, stylized: MediaStreamTrack) -> None:
        """Read the publisher's stylized video and hand every frame to the watchers."""
        await self.video.pump(stylized, self._frame_out)

    def carry_audio(self, track: MediaStreamTrack) -> Any:
        """The publisher's sound, passed through as it comes (returns the task's coroutine)."""
        self.has_audio = True  # before the answer: every watcher from now on gets audio
        return self.audio.pump(track)

    def _frame_out(self, frame: Frame) -> None:
        self.rate.tick()
        self._frames.inc()
        self.size = f"{frame.width}x{frame.height}"  # type: ignore[attr-defined]

    def listing(self) -> dict[str, Any]:
        """The stream as GET /api/streams lists it."""
        peer = self.publisher
        return {
            "name": self.name,
            "style": peer.style if peer else None,
            "strength": peer.strength if peer else None,
            "watchers": len(self.watchers),
            "fps": self.rate.fps(),
            "size": self.size,
            "audio": self.has_audio,
        }


class StreamSet:
    """The live streams and their watchers, capped at max_streams and max_watchers (in all)."""

    def __init__(self, max_streams: int, max_watchers: int, metrics: Metrics) -> None:
        self.max_streams = max_streams
        self.max_watchers = max_watchers
        self.metrics = metrics
        self._streams: dict[str, Stream] = {}

    def __len__(self) -> int:
        return len(self._streams)

    def live(self, name: str) -> Stream:
        """The stream being published under a name, or NotFound."""
        stream = self._streams.get(name)
        if stream is None or stream.publisher is None:
            raise NotFound(f"no stream {name!r} is being published")
        return stream

    def listing(self) -> list[dict[str, Any]]:
        """Every published stream, by name."""
        return [s.listing() for _, s in sorted(self._streams.items()) if s.publisher is not None]

    def watchers(self) -> Iterator[Watcher]:
        """Every watcher of every stream."""
        for stream in list(self._streams.values()):
            yield from list(stream.watchers.values())

    def reserve(self, name: str) -> Stream:
        """Claim a name for a new publisher: 409 if it is taken, 503 past max_streams."""
        if name in self._streams:
            raise Conflict(f"stream {name!r} is already being published")
        if len(self._streams) >= self.max_streams:
            raise AtCapacity(f"the server is at capacity ({self.max_streams} streams)")
        stream = self._streams[name] = Stream(name, self.metrics)
        self.metrics.streams.set(len(self._streams))
        self.metrics.stream_watchers.labels(name).set(0)
        return stream

    async def end(self, stream: Stream) -> None:
        """End a stream (idempotent): free its name, end its outlets, close its watchers."""
        if self._streams.get(stream.name) is not stream:
            return
        del self._streams[stream.name]
        stream.ended = True
        stream.video.finish()
        stream.audio.finish()
        log.info("stream %s ended (%d watcher(s))", stream.name, len(stream.watchers))
        await asyncio.gather(*(self.leave(w) for w in list(stream.watchers.values())))
        self.metrics.streams.set(len(self._streams))
        for series in (self.metrics.stream_watchers, self.metrics.stream_frames):
            series.remove(stream.name)
        self.metrics.stream_skipped.remove(stream.name)

    def admit(self, watcher: Watcher) -> None:
        """Add a watcher to its stream: 503 past max_watchers, 404 if the stream has ended."""
        stream = watcher.stream
        if stream.ended:
            raise NotFound(f"stream {stream.name!r} has ended")
        count = sum(len(s.watchers) for s in self._streams.values())
        if count >= self.max_watchers:
            raise AtCapacity(f"the server is at capacity ({self.max_watchers} watchers)")
        stream.watchers[watcher.id] = watcher
        self.metrics.stream_watchers.labels(stream.name).set(len(stream.watchers))
        log.info("%s watches %s (%d watching)", watcher.id, stream.name, len(stream.watchers))

    async def leave(self, watcher: Watcher) -> None:
        """Drop a watcher (idempotent): stop its outlets, close its connection."""
        stream = watcher.stream
        if stream.watchers.pop(watcher.id, None) is None:
            return
        for outlet in watcher.outlets:
            outlet.stop()
        if not stream.ended:
            self.metrics.stream_watchers.labels(stream.name).set(len(stream.watchers))
        log.info("%s left %s", watcher.id, stream.name)
        await watcher.close()

    async def close_all(self) -> None:
        """End every stream (server shutdown)."""
        await asyncio.gather(*(self.end(s) for s in list(self._streams.values())))
