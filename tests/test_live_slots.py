"""Slot hogging: a connected peer that sends no video is dropped, and one client address holds
at most --max-peers-per-client peers; /healthz and /metrics count both."""

from __future__ import annotations

import asyncio

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from webrtc_helpers import Viewer, difference, test_config

from server.app import create_app
from server.live.keys import PEERS

pytestmark = pytest.mark.timeout(120)


class Lurker:
    """A receive-only peer (no camera): it connects, opens the control channel and sits."""

    def __init__(self) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc.addTransceiver("video", direction="recvonly")
        self.channel = self.pc.createDataChannel("control")

    async def connect(self, client) -> None:
        """POST /offer and apply the answer (asserting 200)."""
        await self.pc.setLocalDescription(await self.pc.createOffer())
        body = {"sdp": self.pc.localDescription.sdp, "type": "offer"}
        response = await client.post("/offer", json=body)
        answer = await response.json()
        assert response.status == 200, answer
        await self.pc.setRemoteDescription(RTCSessionDescription(**answer))

    async def close(self) -> None:
        """Hang up."""
        await self.pc.close()


async def until(check, timeout: float = 60) -> None:
    """Poll a condition until it holds."""
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.05)


async def health(client) -> dict:
    """GET /healthz."""
    return await (await client.get("/healthz")).json()


async def test_peers_that_send_no_video_are_dropped_and_free_their_slots(
    aiohttp_client, models_dir, tmp_path
):
    config = test_config(
        models_dir, tmp_path, max_peers=3, max_peers_per_client=5, video_timeout_s=3.0
    )
    client = await aiohttp_client(create_app(config))
    peers = client.app[PEERS]
    calm, lurkers, refused, late = Viewer(), [Lurker(), Lurker()], Viewer(seed=2), Viewer(seed=3)
    try:
        await calm.connect(client, style="alpha")
        await calm.next_image()
        for lurker in lurkers:
            await lurker.connect(client)
        await until(lambda: all(p.pc.connectionState == "connected" for p in peers))
        response = await client.post("/offer", json=await refused.offer())
        assert response.status == 503  # the lurkers hold the slots for now
        await until(lambda: len(peers) == 1)
        assert calm.pc.connectionState == "connected"  # a camera that sends stays
        assert difference(await calm.latest_image(skip=1), calm.camera.image) > 10
        body = await health(client)
        assert body["peers_dropped"]["no_video"] == 2 and body["peers"] == 1
        metrics = await (await client.get("/metrics")).text()
        assert 'stylefusion_peers_dropped_total{reason="no_video"} 2.0' in metrics
        await late.connect(client)  # a slot is free again
        await late.next_image()
    finally:
        for peer in (calm, refused, late, *lurkers):
            await peer.close()


async def test_one_client_address_holds_at_most_max_peers_per_client(
    aiohttp_client, models_dir, tmp_path
):
    config = test_config(models_dir, tmp_path, trusted_proxies=("127.0.0.1/32",))
    assert (config.max_peers_per_client, config.max_peers) == (2, 8)
    client = await aiohttp_client(create_app(config))
    viewers = [Viewer(seed=i) for i in range(4)]
    try:
        for viewer in viewers[:2]:
            await viewer.connect(client)
            await viewer.next_image()  # connected: no longer a pending offer
        response = await client.post("/offer", json=await viewers[2].offer())
        assert response.status == 429 and int(response.headers["Retry-After"]) >= 1
        assert "per client" in (await response.json())["error"]
        # another client behind the same (trusted) proxy still gets in
        headers = {"X-Forwarded-For": "198.51.100.9"}
        response = await client.post("/offer", json=await viewers[3].offer(), headers=headers)
        assert response.status == 200
        await viewers[3].pc.setRemoteDescription(RTCSessionDescription(**await response.json()))
        await viewers[3].next_image()
        body = await health(client)
        assert body["peers"] == 3 and body["peers_refused"]["per_client"] == 1
        metrics = await (await client.get("/metrics")).text()
        assert 'stylefusion_peers_refused_total{reason="per_client"} 1.0' in metrics
    finally:
        for viewer in viewers:
            await viewer.close()


def test_the_slot_flags_reach_the_config_and_the_help():
    from server.__main__ import build_parser, config_from_args

    parser = build_parser()
    args = ["--video-timeout", "4", "--max-peers-per-client", "3"]
    config = config_from_args(parser.parse_args(args))
    assert (config.video_timeout_s, config.max_peers_per_client) == (4.0, 3)
    text = parser.format_help()
    assert "--video-timeout" in text and "--max-peers-per-client" in text
