"""WHIP publishing and WHEP watching against the real app, with aiortc on both sides."""

from __future__ import annotations

import asyncio

import pytest
from webrtc_helpers import ADMIN_TOKEN, PatternTrack, difference, test_config
from whip_helpers import Publisher, Watcher, on_air, post_sdp, wait_for

from server.app import create_app
from server.keys import METRICS
from server.live.keys import BATCHER, PEERS, STREAMS

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
async def client(aiohttp_client, models_dir, tmp_path):
    return await aiohttp_client(create_app(test_config(models_dir, tmp_path)))


async def streams_of(client) -> list[dict]:
    response = await client.get("/api/streams")
    assert response.status == 200
    return (await response.json())["streams"]


async def test_published_camera_reaches_a_watcher_stylized_with_its_sound(client):
    publisher, watcher = Publisher(), Watcher()
    try:
        answer = await publisher.publish(client, "cam", style="alpha")
        assert answer.status == 201, answer.body
        assert answer.headers["Content-Type"] == "application/sdp"
        assert answer.location.startswith("/whip/cam/") and answer.etag.startswith('"')
        assert answer.body.startswith("v=0")
        await publisher.wait_connected()
        watched = await watcher.watch(client, "cam")
        assert watched.status == 201, watched.body
        assert watched.location.startswith("/whep/cam/")
        image = await watcher.latest_image()
        assert image.shape == (120, 160, 3)
        assert difference(image, publisher.camera.image) > 10  # stylized, not the camera
        await wait_for(lambda: watcher.audio_frames > 10)  # the publisher's tone comes along
        (listed,) = await streams_of(client)
        assert listed["name"] == "cam" and listed["style"] == "alpha"
        assert listed["watchers"] == 1 and listed["fps"] > 0 and listed["audio"] is True
    finally:
        await watcher.close()
        await publisher.close()


async def test_frames_are_stylized_once_for_every_watcher(aiohttp_client, models_dir, tmp_path):
    config = test_config(models_dir, tmp_path, max_pending_per_client=8)  # all from 127.0.0.1
    client = await aiohttp_client(create_app(config))
    async with on_air(client, "class", watchers=3) as (_, watchers):
        for watcher in watchers:
            await watcher.latest_image(skip=10)
        metrics = client.app[METRICS].registry
        decoded = metrics.get_sample_value("stylefusion_frames_in_total")
        stylized = sum(size * n for size, n in client.app[BATCHER].batch_sizes.items())
        fanned = metrics.get_sample_value("stylefusion_stream_frames_total", {"stream": "class"})
        # each decoded camera frame goes through the model at most once, whoever watches;
        # three watchers stylizing on their own would need about three times as many
        assert stylized <= decoded
        assert fanned <= stylized
        gauge = metrics.get_sample_value("stylefusion_stream_watchers", {"stream": "class"})
        assert gauge == 3
        assert len(client.app[PEERS]) == 1  # the publisher; watchers cost no model share


async def test_delete_ends_the_stream_and_its_watchers(client):
    async with on_air(client) as (publisher, (watcher,)):
        response = await client.delete(publisher.session.location)
        assert response.status == 200
        await watcher.wait_closed()
        assert await streams_of(client) == []
        assert len(client.app[PEERS]) == 0 and not list(client.app[STREAMS].watchers())
        again = await client.delete(publisher.session.location)
        assert again.status == 404 and "error" in await again.json()
        late = await Watcher().watch(client, "cam")
        assert late.status == 404 and "cam" in late.error()
        metrics = (await (await client.get("/metrics")).text()).splitlines()
        assert not [line for line in metrics if 'stream="cam"' in line]


async def test_a_watcher_that_leaves_frees_its_place(client):
    async with on_air(client) as (_, (first,)):
        assert (await client.delete(first.session.location)).status == 200
        assert (await streams_of(client))[0]["watchers"] == 0
        await first.wait_closed()
        second = Watcher(audio=False)
        try:
            await second.watch(client, "cam")
            await second.next_image()  # the stream goes on for the others
        finally:
            await second.close()


async def test_a_publisher_that_hangs_up_ends_its_watchers(client):
    async with on_air(client) as (publisher, (watcher,)):
        await publisher.close()  # no DELETE: the DTLS goodbye is all the server hears
        await watcher.wait_closed()
        assert await streams_of(client) == []


class StallingCamera(PatternTrack):
    """A camera that stops delivering frames when told to (the sender then sends nothing)."""

    def __init__(self) -> None:
        super().__init__()
        self.running = asyncio.Event()
        self.running.set()

    def stall(self) -> None:
        """From now on recv() never returns."""
        self.running.clear()

    async def recv(self):  # noqa: ANN201 - a VideoFrame
        await self.running.wait()
        return await super().recv()


async def test_a_publisher_gone_silent_ends_its_watchers(aiohttp_client, models_dir, tmp_path):
    config = test_config(models_dir, tmp_path, publisher_timeout_s=3.0)
    client = await aiohttp_client(create_app(config))
    camera = StallingCamera()
    publisher, watcher = Publisher(audio=False, camera=camera), Watcher(audio=False)
    try:
        await publisher.publish(client, "cam")
        await watcher.watch(client, "cam")
        await watcher.next_image()
        camera.stall()  # a crash or a pulled cable: no goodbye, just no more media
        await watcher.wait_closed()
        assert await streams_of(client) == []
    finally:
        await watcher.close()
        await publisher.close()


async def test_publishing_needs_the_publish_token(aiohttp_client, models_dir, tmp_path):
    config = test_config(
        models_dir, tmp_path, publish_token="publish-token-0123456789", max_peers_per_client=4
    )
    client = await aiohttp_client(create_app(config))
    sdp = await Publisher().offer()
    for token in (None, "wrong-token-0123456789"):
        refused = await post_sdp(client, "/whip/cam", sdp, token)
        assert refused.status == 401 and "publish token" in refused.error()
        assert refused.headers["WWW-Authenticate"] == "Bearer"
    for token in ("publish-token-0123456789", ADMIN_TOKEN):  # the admin token publishes too
        publisher = Publisher(audio=False)
        try:
            assert (await publisher.publish(client, f"cam-{token[:5]}", token)).status == 201
        finally:
            await publisher.close()


async def test_watching_is_open_unless_a_watch_token_is_set(aiohttp_client, models_dir, tmp_path):
    config = test_config(models_dir, tmp_path, watch_token="watch-token-0123456789")
    client = await aiohttp_client(create_app(config))
    publisher = Publisher(audio=False)
    try:
        await publisher.publish(client, "cam")
        assert (await Watcher().watch(client, "cam")).status == 401
        assert (await client.get("/api/streams")).status == 401
        watcher = Watcher(audio=False)
        try:
            assert (await watcher.watch(client, "cam", "watch-token-0123456789")).status == 201
            await watcher.next_image()
        finally:
            await watcher.close()
    finally:
        await publisher.close()


async def test_restyling_a_stream_changes_what_watchers_see(client):
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with on_air(client, style="alpha") as (_, (watcher,)):
        before = await watcher.latest_image()
        response = await client.patch("/api/streams/cam", json={"style": "beta"}, headers=auth)
        assert response.status == 200 and (await response.json())["style"] == "beta"
        await wait_for(lambda: client.app[STREAMS].live("cam").publisher.pending_ack is None)
        after = await watcher.latest_image()
        assert difference(before, after) > 10
        for body, headers, status in (
            ({"style": "beta"}, {}, 401),
            ({"style": "nope"}, auth, 400),
            ({"strength": 2}, auth, 400),
        ):
            refused = await client.patch("/api/streams/cam", json=body, headers=headers)
            assert refused.status == status and "error" in await refused.json()
        missing = await client.patch("/api/streams/gone", json={"style": "beta"}, headers=auth)
        assert missing.status == 404


async def test_a_publisher_with_a_control_channel_steers_its_stream(client):
    publisher, watcher = Publisher(audio=False, control=True), Watcher(audio=False)
    try:
        await publisher.publish(client, "share", style="alpha")
        await wait_for(lambda: publisher.channel.readyState == "open")
        await wait_for(lambda: any(m.get("event") == "budget" for m in publisher.messages))
        await watcher.watch(client, "share")
        await watcher.next_image()
        publisher.channel.send('{"style": "beta"}')
        await wait_for(lambda: {"event": "style", "style": "beta"} in publisher.messages)
        assert (await streams_of(client))[0]["style"] == "beta"
        await wait_for(lambda: any(m.get("event") == "stats" for m in publisher.messages))
    finally:
        await watcher.close()
        await publisher.close()
