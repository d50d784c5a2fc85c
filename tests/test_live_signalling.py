"""POST /offer against the real app, with an in-process aiortc peer as the browser."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from webrtc_helpers import Viewer, difference, test_config

from server.app import create_app
from server.live.keys import BATCHER, PEERS

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def client(aiohttp_client, models_dir, tmp_path):
    return await aiohttp_client(create_app(test_config(models_dir, tmp_path, max_peers=1)))


@pytest.mark.parametrize("marker_bit", [True, False])
async def test_stylized_frames_come_back(aiohttp_client, models_dir, tmp_path, marker_bit):
    config = test_config(models_dir, tmp_path, marker_bit=marker_bit)
    client = await aiohttp_client(create_app(config))
    viewer = Viewer()
    try:
        await viewer.connect(client, style="alpha")
        image = await viewer.latest_image()
        assert image.shape == (120, 160, 3)
        assert difference(image, viewer.camera.image) > 10
    finally:
        await viewer.close()


async def test_style_switch_is_acked_and_changes_output(client):
    viewer = Viewer()
    try:
        await viewer.connect(client, style="alpha")
        await viewer.wait_open()
        before = await viewer.latest_image()
        ack = await viewer.switch_style("beta")
        assert ack == {"event": "style", "style": "beta"}
        after = await viewer.latest_image()
        assert difference(before, after) > 10
    finally:
        await viewer.close()


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        b'{"type": "offer"}',
        b'{"sdp": "v=0", "type": "answer"}',
        b'{"sdp": "this is not sdp", "type": "offer"}',
        b'{"sdp": "v=0\\r\\n", "type": "offer", "style": 5}',
    ],
)
async def test_bad_offers_get_400_json(client, body):
    response = await client.post("/offer", data=body, headers={"Content-Type": "application/json"})
    assert response.status == 400
    assert "error" in await response.json()
    assert len(client.app[PEERS]) == 0


async def test_unknown_style_gets_400(client):
    viewer = Viewer()
    try:
        response = await client.post("/offer", json={**await viewer.offer(), "style": "nope"})
        assert response.status == 400
        assert "nope" in (await response.json())["error"]
    finally:
        await viewer.close()


async def test_offer_without_video_gets_400(client):
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        pc.createDataChannel("control")  # a data-channel-only offer: nothing to stylize
        await pc.setLocalDescription(await pc.createOffer())
        response = await client.post(
            "/offer", json={"sdp": pc.localDescription.sdp, "type": "offer"}
        )
        assert response.status == 400
        assert "video" in (await response.json())["error"]
    finally:
        await pc.close()


async def test_peer_over_the_limit_gets_503(client):
    first, second = Viewer(), Viewer()
    try:
        await first.connect(client)
        response = await client.post("/offer", json=await second.offer())
        assert response.status == 503
        assert "capacity" in (await response.json())["error"]
    finally:
        await first.close()
        await second.close()


async def test_vanished_peer_is_cleaned_up(client):
    viewer = Viewer()
    await viewer.connect(client)
    await viewer.latest_image(skip=1)
    peers = client.app[PEERS]
    assert len(peers) == 1
    (peer,) = list(peers)
    await viewer.close()  # the tab goes away
    async with asyncio.timeout(15):
        while len(peers) or peer.tasks:
            await asyncio.sleep(0.05)
    leftovers = [t for t in asyncio.all_tasks() if t.get_name().startswith(peer.id)]
    assert leftovers == []
    health = await (await client.get("/healthz")).json()
    assert health["peers"] == 0
    metrics = await (await client.get("/metrics")).text()
    assert "stylefusion_active_peers 0.0" in metrics


async def test_control_channel_strength_errors_and_stats(client):
    viewer = Viewer()
    try:
        await viewer.connect(client, style="alpha")
        await viewer.wait_open()
        stylized = await viewer.latest_image()
        viewer.send({"strength": 0.0})
        stats = await viewer.wait_message(lambda m: m.get("event") == "stats" and not m["strength"])
        assert stats["fps_out"] > 0 and stats["latency_ms"] > 0 and stats["style"] == "alpha"
        plain = await viewer.latest_image()
        assert difference(plain, viewer.camera.image) < difference(stylized, viewer.camera.image)
        for bad in ({"style": "nope"}, {"strength": 3}, {"hello": 1}, "not json"):
            viewer.channel.send(bad if isinstance(bad, str) else json.dumps(bad))
        errors = [await viewer.wait_message(lambda m: m.get("event") == "error")]
        async with asyncio.timeout(5):
            while len(errors) < 4:
                errors = [m for m in viewer.messages if m.get("event") == "error"]
                await asyncio.sleep(0.05)
        assert "nope" in errors[0]["error"]
    finally:
        await viewer.close()


async def test_two_peers_are_batched_together(aiohttp_client, models_dir, tmp_path):
    config = test_config(models_dir, tmp_path, max_peers=2, max_wait_ms=60.0)
    client = await aiohttp_client(create_app(config))
    viewers = [Viewer(seed=1), Viewer(seed=2)]
    try:
        for viewer in viewers:
            await viewer.connect(client, style="alpha")
        for _ in range(3):
            for viewer in viewers:
                await viewer.next_image(timeout=15)
        metrics = await (await client.get("/metrics")).text()
        assert client.app[BATCHER].batch_sizes[2] >= 1
        assert 'stylefusion_batch_size_bucket{le="1.0"}' in metrics
        single = _metric(metrics, 'stylefusion_batch_size_bucket{le="1.0"}')
        pairs = _metric(metrics, 'stylefusion_batch_size_bucket{le="2.0"}')
        assert pairs > single
    finally:
        for viewer in viewers:
            await viewer.close()


def _metric(text: str, name: str) -> float:
    """The value of one sample line of Prometheus text."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not in /metrics")


async def test_shutdown_closes_every_peer(client):
    viewer = Viewer()
    try:
        await viewer.connect(client)
        await viewer.next_image()
        (peer,) = list(client.app[PEERS])
        batcher = client.app[BATCHER]
        assert batcher.running
        await client.close()  # runs the cleanup contexts
        assert peer.pc.connectionState == "closed" and not peer.tasks
        assert not batcher.running
        async with asyncio.timeout(10):  # the viewer sees the server hang up
            while viewer.pc.connectionState != "closed":
                await asyncio.sleep(0.05)
    finally:
        await viewer.close()
