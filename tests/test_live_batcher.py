"""The batcher without WebRTC: grouping, newest-wins, one frame in flight per peer."""

from __future__ import annotations

import asyncio

import pytest
import torch
from webrtc_helpers import FakeRun, FakeStylizer, frame, values

from server.errors import FrameDropped
from server.live.batcher import Batcher
from server.metrics import Metrics
from stylefusion.errors import StyleNotFound

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def styles():
    return {"alpha": FakeStylizer(), "beta": FakeStylizer()}


@pytest.fixture
async def make_batcher(styles):
    batchers: list[Batcher] = []

    def lookup(name: str) -> FakeRun:
        if name not in styles:
            raise StyleNotFound(name)
        return (
            styles[name] if isinstance(styles[name], FakeRun) else FakeRun(styles[name], None, name)
        )

    def make(**kwargs) -> Batcher:
        batcher = Batcher(lookup, metrics=Metrics(), **kwargs)  # type: ignore[arg-type]
        batcher.start()
        batchers.append(batcher)
        return batcher

    yield make
    for batcher in batchers:
        await batcher.stop()


async def test_same_style_and_size_share_one_call(make_batcher, styles):
    batcher = make_batcher(max_batch=8, max_wait_s=5.0)
    for peer in ("a", "b"):
        batcher.add_peer(peer)
    results = await asyncio.gather(
        batcher.submit("a", frame(10), "alpha"), batcher.submit("b", frame(20), "alpha")
    )
    assert [values(c) for c in styles["alpha"].calls] == [[10, 20]]
    assert [r.batch_size for r in results] == [2, 2]
    assert int(results[1].frame.to_ndarray(format="rgb24")[0, 0, 0]) == 255 - 20
    assert batcher.batch_sizes == {2: 1}


async def test_styles_and_sizes_are_never_mixed(make_batcher, styles):
    batcher = make_batcher(max_batch=8, max_wait_s=0.5)
    for peer in ("a", "b", "c"):
        batcher.add_peer(peer)
    await asyncio.gather(
        batcher.submit("a", frame(10), "alpha"),
        batcher.submit("b", frame(20), "beta"),
        batcher.submit("c", frame(30, width=48), "alpha"),
    )
    shapes = sorted((len(c), c.shape[2]) for s in styles.values() for c in s.calls)
    assert shapes == [(1, 32), (1, 32), (1, 48)]


async def test_newest_frame_wins_and_one_frame_in_flight_per_peer(make_batcher, styles):
    model = styles["alpha"]
    batcher = make_batcher(max_batch=8, max_wait_s=0.0)
    batcher.add_peer("a")
    model.gate.clear()
    first = batcher.submit("a", frame(1), "alpha")
    await asyncio.to_thread(model.entered.wait, 5)  # frame 1 is in flight, the thread is held
    stale = batcher.submit("a", frame(2), "alpha")
    newest = batcher.submit("a", frame(3), "alpha")
    model.gate.set()
    with pytest.raises(FrameDropped):
        await stale
    await first
    result = await newest
    assert [values(c) for c in model.calls] == [[1], [3]]
    assert int(result.frame.to_ndarray(format="rgb24")[0, 0, 0]) == 255 - 3


async def test_max_batch_splits_large_groups(make_batcher, styles):
    batcher = make_batcher(max_batch=2, max_wait_s=0.5)
    for peer in ("a", "b", "c"):
        batcher.add_peer(peer)
    await asyncio.gather(*(batcher.submit(p, frame(5), "alpha") for p in ("a", "b", "c")))
    assert sorted(len(c) for c in styles["alpha"].calls) == [1, 2]


async def test_a_lone_frame_goes_after_max_wait(make_batcher, styles):
    batcher = make_batcher(max_batch=8, max_wait_s=0.05)
    for peer in ("a", "b"):  # b never sends: a must not wait for it forever
        batcher.add_peer(peer)
    result = await asyncio.wait_for(batcher.submit("a", frame(7), "alpha"), 5)
    assert result.batch_size == 1


async def test_a_failing_model_call_fails_its_frames_only(make_batcher, styles):
    batcher = make_batcher(max_wait_s=0.0)
    styles["alpha"].fail = True
    with pytest.raises(RuntimeError, match="exploded"):
        await batcher.submit("a", frame(1), "alpha")
    styles["alpha"].fail = False
    assert (await batcher.submit("a", frame(1), "alpha")).batch_size == 1


async def test_unknown_style_is_refused_at_once(make_batcher):
    batcher = make_batcher()
    with pytest.raises(StyleNotFound):
        batcher.submit("a", frame(1), "nope")


async def test_removed_peer_pending_frame_is_cancelled(make_batcher, styles):
    model = styles["alpha"]
    batcher = make_batcher(max_wait_s=0.0)
    model.gate.clear()
    busy = batcher.submit("x", frame(1), "alpha")
    await asyncio.to_thread(model.entered.wait, 5)
    waiting = batcher.submit("a", frame(2), "alpha")
    batcher.remove_peer("a")
    model.gate.set()
    await busy
    with pytest.raises(asyncio.CancelledError):
        await waiting


async def test_per_frame_strength_blends_with_the_input(make_batcher, styles):
    batcher = make_batcher(max_batch=8, max_wait_s=5.0)
    for peer in ("a", "b", "c"):
        batcher.add_peer(peer)
    results = await asyncio.gather(
        *(
            batcher.submit(p, frame(100), "alpha", s)
            for p, s in [("a", 0.0), ("b", 0.5), ("c", 1.0)]
        )
    )
    assert [int(r.frame.to_ndarray(format="rgb24")[0, 0, 0]) for r in results] == [100, 128, 155]
    assert batcher.batch_sizes == {3: 1}


async def test_styles_of_one_network_share_a_call_each_with_its_norms(make_batcher, styles):
    network = FakeStylizer()
    ink, oil = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 3.0])
    styles.update(ink=FakeRun(network, ink, "net"), oil=FakeRun(network, oil, "net"))
    batcher = make_batcher(max_batch=8, max_wait_s=5.0)
    for peer in ("a", "b", "c"):
        batcher.add_peer(peer)
    results = await asyncio.gather(
        batcher.submit("a", frame(10), "ink"),
        batcher.submit("b", frame(20), "oil"),
        batcher.submit("c", frame(30), "ink", blend=("oil", 0.25)),
    )
    assert [values(c) for c in network.calls] == [[10, 20, 30]]  # one call, three styles
    expected = torch.stack([ink, oil, torch.lerp(ink, oil, 0.25)])
    torch.testing.assert_close(network.norms[0], expected)
    assert [r.style for r in results] == ["ink", "oil", "ink"]
    assert [r.blend for r in results] == [None, None, ("oil", 0.25)]


async def test_a_blend_with_another_network_or_a_missing_style_is_left_out(make_batcher, styles):
    network = FakeStylizer()
    styles.update(ink=FakeRun(network, torch.tensor([1.0, 0.0]), "net"))
    batcher = make_batcher(max_wait_s=0.0)
    batcher.add_peer("a")
    other = await batcher.submit("a", frame(10), "ink", blend=("alpha", 0.5))
    gone = await batcher.submit("a", frame(10), "ink", blend=("nope", 0.5))
    assert other.blend is None and gone.blend is None
    torch.testing.assert_close(network.norms[-1], torch.tensor([[1.0, 0.0]]))


async def test_peer_leaving_while_the_batcher_waits_does_not_stop_it(make_batcher, styles):
    batcher = make_batcher(max_wait_s=0.3)
    for peer in ("a", "b"):
        batcher.add_peer(peer)
    gone = batcher.submit("a", frame(1), "alpha")
    await asyncio.sleep(0.05)  # the thread is now waiting for b's frame to join
    batcher.remove_peer("a")
    with pytest.raises(asyncio.CancelledError):
        await gone
    await asyncio.sleep(0.4)
    assert (await asyncio.wait_for(batcher.submit("b", frame(2), "alpha"), 5)).batch_size == 1


async def test_frames_above_the_cap_are_downscaled_before_the_model(make_batcher, styles):
    batcher = make_batcher(max_wait_s=0.0, fit=lambda w, h: (min(w, 16), min(h, 12)))
    big, small = frame(40, width=64, height=48), frame(50, width=16, height=12)
    results = [await batcher.submit("a", f, "alpha") for f in (big, small)]
    assert [c.shape[1:3] for c in styles["alpha"].calls] == [(12, 16), (12, 16)]
    assert [(r.frame.width, r.frame.height) for r in results] == [(16, 12), (16, 12)]
    assert batcher.costs.per_frame(16, 12) > 0  # every call teaches the cost model


async def test_a_frame_that_waited_through_a_call_meets_the_peer_that_call_served(
    make_batcher, styles
):
    # a slow model: b's frame comes while a's call runs and waits longer than max_wait; a
    # sends its next frame as soon as it gets its result, and the two share the next call
    model = styles["alpha"]
    batcher = make_batcher(max_batch=8, max_wait_s=1.0)
    for peer in ("a", "b"):
        batcher.add_peer(peer)
    model.gate.clear()
    first = batcher.submit("a", frame(1), "alpha")
    await asyncio.to_thread(model.entered.wait, 10)
    waiting = batcher.submit("b", frame(2), "alpha")
    await asyncio.sleep(1.2)  # longer than max_wait: the old rule sent b alone next
    model.gate.set()
    await first
    again = batcher.submit("a", frame(3), "alpha")
    together = await asyncio.gather(waiting, again)
    assert [r.batch_size for r in together] == [2, 2]
    assert values(model.calls[-1]) == [2, 3]
