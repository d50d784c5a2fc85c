"""POST /offer: admit a peer, answer its SDP offer, wire its tracks and data channel."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from aiohttp import web
from aiortc import (
    MediaStreamTrack,
    RTCDataChannel,
    RTCPeerConnection,
    RTCSctpTransport,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError

from ..clients import client_address
from ..config import ServerConfig
from ..errors import BadRequest, WarmingUp
from ..keys import CONFIG, METRICS, STYLES
from .budget import Budget
from .control import LABEL, attach_control
from .ice import page_ice_servers, rtc_configuration
from .keys import BATCHER, BUDGET, PEERS
from .message_cap import cap_messages
from .offers import read_offer
from .peers import Peer
from .rate import ControlRate
from .rtp import install_latest_frame_queues, install_marker_jitter_buffers
from .track import StylizedTrack

log = logging.getLogger(__name__)


async def offer(request: web.Request) -> web.Response:
    """Answer a WebRTC offer with a stylized video track; 4xx on bad input, 503 at capacity."""
    app = request.app
    registry, peers, config = app[STYLES], app[PEERS], app[CONFIG]
    sdp, style = await read_offer(request, config)
    style = style or registry.default
    if style is None:  # an empty models dir: the first trained style makes the server ready
        raise WarmingUp("no style is loaded yet")
    if style not in registry:
        raise BadRequest(f"unknown style {style!r}")
    remote = client_address(request, config.trusted_proxies)
    peers.check_client(
        remote, config.max_pending_per_client, config.max_peers_per_client, config.connect_timeout_s
    )
    peers.check_room()  # before building a connection that would only be thrown away
    peer = Peer(RTCPeerConnection(rtc_configuration(config)), style, registry)
    peer.remote = remote
    peers.add(peer)  # before any await, so concurrent offers cannot exceed max_peers
    try:
        answer = await negotiate(app, peer, sdp)
    except Exception as exc:  # noqa: BLE001 - whatever aiortc rejects is the offer's fault
        await peers.remove(peer)
        if isinstance(exc, BadRequest):
            raise
        log.info("rejected offer: %r", exc)
        raise BadRequest(f"unusable SDP offer: {exc}") from exc
    peer.spawn(drop_if_never_connected(app, peer), "connect-timeout")
    return web.json_response(answer)


async def negotiate(app: web.Application, peer: Peer, sdp: str) -> dict[str, Any]:
    """Apply the offer, attach the stylized track and control channel, return the answer."""
    pc = peer.pc
    wire_events(app, peer)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
    if pc.sctp is not None:
        cap_control_messages(app, peer, pc.sctp)
    if not any(t.kind == "video" for t in pc.getTransceivers()):
        raise BadRequest("the offer has no video track")
    if app[CONFIG].marker_bit:
        install_marker_jitter_buffers(pc)
    install_latest_frame_queues(pc, app[METRICS].decoder_dropped.inc)
    await pc.setLocalDescription(await pc.createAnswer())
    return {"sdp": pc.localDescription.sdp, "type": pc.localDescription.type}


def cap_control_messages(app: web.Application, peer: Peer, sctp: RTCSctpTransport) -> None:
    """Advertise and enforce the data-channel message cap; evict a peer that floods."""
    limit = app[CONFIG].max_message_bytes

    def oversize() -> None:
        log.info("%s sent a data-channel message over %d bytes", peer.id, limit)
        peer.send({"event": "error", "error": f"control messages are limited to {limit} bytes"})

    def flood() -> None:
        log.warning("%s floods its data channel; dropping it", peer.id)
        peer.spawn(app[PEERS].drop(peer, "sctp_flood"), "evict")

    cap_messages(sctp, limit, oversize, flood)


def wire_events(app: web.Application, peer: Peer) -> None:
    """Connect the peer connection's events to the track, control channel and clean-up."""
    pc, peers = peer.pc, app[PEERS]

    @pc.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        if track.kind != "video":
            peer.spawn(drain(track), f"drain-{track.kind}")
            return
        stylized = StylizedTrack(track, peer, app[BATCHER], app[METRICS])
        pc.addTrack(stylized)
        peer.spawn(read_then_leave(app, peer, stylized), "reader")

    @pc.on("datachannel")
    def on_datachannel(channel: RTCDataChannel) -> None:
        if channel.label == LABEL:
            config = app[CONFIG]
            rate = ControlRate(config.control_rate, config.control_burst)
            attach_control(peer, channel, app[STYLES], config.stats_interval_s, rate, flooded)
            peer.send(app[BUDGET].current.message())  # what to send, before the first frame

    def flooded() -> None:
        log.warning("%s keeps flooding its control channel; dropping it", peer.id)
        peer.spawn(peers.drop(peer, "control_flood"), "evict")

    @pc.on("connectionstatechange")
    async def on_state() -> None:
        log.info("%s connection %s", peer.id, pc.connectionState)
        if pc.connectionState == "connected" and not peer.watched:
            peer.watched = True
            peer.spawn(drop_if_no_video(app, peer), "video-watch")
        if pc.connectionState in ("failed", "closed"):
            await peers.remove(peer)


async def read_then_leave(app: web.Application, peer: Peer, track: StylizedTrack) -> None:
    """Read the peer's camera until it ends, then remove the peer."""
    await track.read_source()
    # removing cancels this very task's siblings; shield the removal from our own cancel
    await asyncio.shield(app[PEERS].remove(peer))


async def drain(track: MediaStreamTrack) -> None:
    """Consume and discard a track we do not use (e.g. the microphone)."""
    try:
        while True:
            await track.recv()
    except MediaStreamError:
        pass


async def drop_if_never_connected(app: web.Application, peer: Peer) -> None:
    """Remove a peer whose connection is not up after connect_timeout_s (a half-open offer)."""
    await asyncio.sleep(app[CONFIG].connect_timeout_s)
    if peer.pc.connectionState != "connected":
        log.info("%s never connected; dropping it", peer.id)
        await asyncio.shield(app[PEERS].drop(peer, "never_connected"))


async def drop_if_no_video(app: web.Application, peer: Peer) -> None:
    """Remove a connected peer that sends no video for video_timeout_s (it would hog a slot)."""
    timeout = app[CONFIG].video_timeout_s
    peer.last_video = max(peer.last_video, time.monotonic())  # the clock starts at connect
    while (idle := time.monotonic() - peer.last_video) < timeout:
        await asyncio.sleep(timeout - idle)
    log.info("%s sent no video for %g s; dropping it", peer.id, timeout)
    await asyncio.shield(app[PEERS].drop(peer, "no_video"))


def page_config(config: ServerConfig, budget: Budget) -> str:
    """JSON for GET /api/config: ICE servers, limits, and the camera size to open by default."""
    ice = page_ice_servers(config)
    snapshot = {"max_pixels": config.max_snapshot_pixels, "max_bytes": config.max_snapshot_bytes}
    return json.dumps(
        {
            "iceServers": ice,
            "maxPeers": config.max_peers,
            "budget": budget.message(),
            "snapshot": snapshot,
        }
    )
