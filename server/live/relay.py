"""Fan-out of one stream's media: one reader of the source, one outlet per watcher's sender.

Video keeps only the newest frame per outlet, so a watcher whose encoder falls behind skips
to the latest frame instead of building up lag (aiortc's MediaRelay(buffered=False) does the
same, but stops reading when nobody listens and never tells its proxies that the source is
gone). Audio keeps a short queue per outlet, since a dropped sound frame clicks; past
AUDIO_DEPTH frames the oldest go, so a stalled watcher cannot hold more than that.

Each outlet gets a frame object of its own. PyAV frames are not safe to share between
encoder threads (MediaRelay shares them): two VP8 encoders converting one rgb24 frame at once
use the frame's one cached scaler and hang for good, and the H.264 encoder rewrites its
input's pts, time base and picture type. So the stylized frame is converted to yuv420p once,
in a worker thread, and copied plane by plane for each outlet (a memcpy; the encoders then
have nothing left to convert).
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable

from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame, VideoFrame
from av.frame import Frame

log = logging.getLogger(__name__)

AUDIO_DEPTH = 10  # audio frames an outlet may hold: 200 ms of 20 ms Opus frames
Copies = Callable[[Frame, int], list[Frame]]  # (frame, n) -> n frames of their own


def video_copies(frame: VideoFrame, count: int) -> list[Frame]:
    """`count` yuv420p frames of one picture (converted once; the encoders' own format)."""
    yuv = frame.reformat(format="yuv420p")  # the same object if it already is
    copies: list[Frame] = [yuv]
    for _ in range(count - 1):
        copy = VideoFrame(yuv.width, yuv.height, "yuv420p")  # planes laid out as yuv's
        for source, target in zip(yuv.planes, copy.planes, strict=True):
            target.update(source)
        copy.pts, copy.time_base = yuv.pts, yuv.time_base
        copies.append(copy)
    return copies


def audio_copies(frame: AudioFrame, count: int) -> list[Frame]:
    """`count` copies of a sound frame (decoded frames carry padding: copy the samples)."""
    samples = frame.to_ndarray()
    copies: list[Frame] = []
    for _ in range(count):
        copy = AudioFrame.from_ndarray(samples, format=frame.format.name, layout=frame.layout.name)
        copy.sample_rate, copy.pts, copy.time_base = frame.sample_rate, frame.pts, frame.time_base
        copies.append(copy)
    return copies


class Outlet(MediaStreamTrack):
    """One watcher's view of a fan-out: the newest frame(s), ended when the source ends."""

    def __init__(self, fanout: Fanout) -> None:
        super().__init__()
        self.kind = fanout.kind
        self.fanout = fanout
        self.dropped = 0  # frames replaced before this outlet's sender took them
        self._frames: collections.deque[Frame] = collections.deque(maxlen=fanout.depth)
        self._ready = asyncio.Event()
        self._finished = False

    def put(self, frame: Frame) -> bool:
        """Offer a frame; False if it pushed out one the sender had not taken yet."""
        full = len(self._frames) == self._frames.maxlen
        self._frames.append(frame)
        self._ready.set()
        if full:
            self.dropped += 1
        return not full

    def finish(self) -> None:
        """The source has ended: recv() raises once the frames held are taken."""
        self._finished = True
        self._ready.set()

    async def recv(self) -> Frame:
        """The next frame for this watcher's encoder (the newest one, for video)."""
        while not self._frames:
            if self._finished or self.readyState != "live":
                raise MediaStreamError
            self._ready.clear()
            await self._ready.wait()
        return self._frames.popleft()

    def stop(self) -> None:
        """The watcher left: stop taking frames."""
        super().stop()
        self.fanout.unsubscribe(self)
        self._ready.set()


class Fanout:
    """Reads one source track and hands a copy of every frame to each subscribed outlet."""

    def __init__(
        self,
        kind: str,
        depth: int,
        copies: Copies,
        in_thread: bool = False,
        on_drop: Callable[[], None] = lambda: None,
    ) -> None:
        self.kind = kind
        self.depth = depth
        self.copies = copies
        self.in_thread = in_thread  # make the copies in a worker thread (video: not on the loop)
        self.on_drop = on_drop  # an outlet skipped a frame (its encoder was behind)
        self.finished = False
        self._outlets: set[Outlet] = set()

    def __len__(self) -> int:
        return len(self._outlets)

    def subscribe(self) -> Outlet:
        """A new outlet, fed from the next frame on (ended at once if the source is)."""
        outlet = Outlet(self)
        if self.finished:
            outlet.finish()
        else:
            self._outlets.add(outlet)
        return outlet

    def unsubscribe(self, outlet: Outlet) -> None:
        """Stop feeding an outlet."""
        self._outlets.discard(outlet)

    async def put(self, frame: Frame) -> None:
        """Hand a copy of the frame to every outlet (an outlet added meanwhile gets the next)."""
        outlets = list(self._outlets)
        if not outlets:
            return
        if self.in_thread:
            frames = await asyncio.to_thread(self.copies, frame, len(outlets))
        else:
            frames = self.copies(frame, len(outlets))
        for outlet, copy in zip(outlets, frames, strict=True):
            if not outlet.put(copy):
                self.on_drop()

    def finish(self) -> None:
        """End every outlet (the source is gone)."""
        self.finished = True
        for outlet in list(self._outlets):
            outlet.finish()
        self._outlets.clear()

    async def pump(
        self, source: MediaStreamTrack, on_frame: Callable[[Frame], None] = lambda f: None
    ) -> None:
        """Read the source until it ends, whoever listens; then end the outlets."""
        try:
            while True:
                frame = await source.recv()
                on_frame(frame)
                await self.put(frame)
        except MediaStreamError:
            log.debug("the %s source of a fan-out ended", self.kind)
        finally:
            self.finish()
