"""The stylized track without WebRTC: newest frame wins, drops are counted, pts are kept."""

from __future__ import annotations

import asyncio
from fractions import Fraction

import pytest
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from av import VideoFrame
from webrtc_helpers import FakeRun, FakeStylizer, frame

from server.live.batcher import Batcher
from server.live.peers import Peer
from server.live.track import StylizedTrack
from server.metrics import Metrics

pytestmark = pytest.mark.timeout(30)

TIME_BASE = Fraction(1, 90000)


class QueueTrack(MediaStreamTrack):
    """A source track fed by hand; None ends it."""

    kind = "video"

    def __init__(self) -> None:
        super().__init__()
        self.queue: asyncio.Queue[VideoFrame | None] = asyncio.Queue()

    def push(self, value: int | None) -> None:
        if value is None:
            self.queue.put_nowait(None)
            return
        item = frame(value)
        item.pts, item.time_base = value * 3000, TIME_BASE
        self.queue.put_nowait(item)

    async def recv(self) -> VideoFrame:
        item = await self.queue.get()
        if item is None:
            raise MediaStreamError
        return item


@pytest.fixture
async def setup():
    metrics = Metrics()
    batcher = Batcher(lambda name: FakeRun(FakeStylizer()), max_wait_s=0.0, metrics=metrics)
    batcher.start()
    source = QueueTrack()
    peer = Peer(None, "alpha", None)  # type: ignore[arg-type] - no connection needed here
    track = StylizedTrack(source, peer, batcher, metrics)
    reader = asyncio.create_task(track.read_source())
    yield source, track, peer, metrics
    reader.cancel()
    await batcher.stop()


async def drained(source: QueueTrack) -> None:
    async with asyncio.timeout(5):
        while not source.queue.empty():
            await asyncio.sleep(0.01)
    await asyncio.sleep(0.01)


async def test_newest_frame_is_stylized_and_older_ones_are_dropped(setup):
    source, track, peer, metrics = setup
    for value in (1, 2, 3, 4):
        source.push(value)
    await drained(source)
    out = await track.recv()
    assert int(out.to_ndarray(format="rgb24")[0, 0, 0]) == 255 - 4  # frame 4, stylized
    assert (out.pts, out.time_base) == (4 * 3000, TIME_BASE)
    assert peer.dropped_total == 3
    assert metrics.registry.get_sample_value("stylefusion_frames_dropped_total") == 3
    assert metrics.registry.get_sample_value("stylefusion_frames_out_total") == 1


async def test_frames_flow_one_after_another_then_the_track_ends(setup):
    source, track, peer, _ = setup
    got = []
    for value in (5, 6, 7):
        source.push(value)
        await drained(source)
        got.append((await track.recv()).pts // 3000)
    assert got == [5, 6, 7] and peer.dropped_total == 0
    source.push(None)
    with pytest.raises(MediaStreamError):
        await track.recv()
