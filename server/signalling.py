"""POST /offer: admit a peer, answer its SDP offer, wire its tracks and data channel."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from aiohttp import web
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError

from .budget import Budget
from .config import ServerConfig
from .control import LABEL, attach_control
from .errors import AtCapacity, BadRequest
from .keys import BATCHER, BUDGET, CONFIG, METRICS, PEERS, REGISTRY
from .peers import Peer
from .rtp import install_latest_frame_queues, install_marker_jitter_buffers
from .track import StylizedTrack

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 30.0  # a peer that has not connected by then is dropped


async def offer(request: web.Request) -> web.Response:
    """Answer a WebRTC offer with a stylized video track; 400 on bad input, 503 at capacity."""
    app = request.app
    sdp, style = await read_offer(request)
    registry, peers, config = app[REGISTRY], app[PEERS], app[CONFIG]
    style = style or registry.default
    if style is None:
        raise AtCapacity("no style is loaded yet")
    if style not in registry:
        raise BadRequest(f"unknown style {style!r}")
    peer = Peer(RTCPeerConnection(rtc_configuration(config)), style, registry)
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


async def read_offer(request: web.Request) -> tuple[str, str | None]:
    """Parse the body `{"sdp", "type": "offer", "style"?}`."""
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("the body must be JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    sdp, kind, style = body.get("sdp"), body.get("type"), body.get("style")
    if not isinstance(sdp, str) or not sdp.strip():
        raise BadRequest('"sdp" must be a non-empty string')
    if kind != "offer":
        raise BadRequest('"type" must be "offer"')
    if style is not None and not isinstance(style, str):
        raise BadRequest('"style" must be a string')
    return sdp, style


async def negotiate(app: web.Application, peer: Peer, sdp: str) -> dict[str, Any]:
    """Apply the offer, attach the stylized track and control channel, return the answer."""
    pc = peer.pc
    wire_events(app, peer)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
    if not any(t.kind == "video" for t in pc.getTransceivers()):
        raise BadRequest("the offer has no video track")
    if app[CONFIG].marker_bit:
        install_marker_jitter_buffers(pc)
    install_latest_frame_queues(pc, app[METRICS].decoder_dropped.inc)
    await pc.setLocalDescription(await pc.createAnswer())
    return {"sdp": pc.localDescription.sdp, "type": pc.localDescription.type}


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
            attach_control(peer, channel, app[REGISTRY], app[CONFIG].stats_interval_s)
            peer.send(app[BUDGET].current.message())  # what to send, before the first frame

    @pc.on("connectionstatechange")
    async def on_state() -> None:
        log.info("%s connection %s", peer.id, pc.connectionState)
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
    """Remove a peer whose connection is not up after CONNECT_TIMEOUT_S."""
    await asyncio.sleep(CONNECT_TIMEOUT_S)
    if peer.pc.connectionState != "connected":
        log.info("%s never connected; dropping it", peer.id)
        await asyncio.shield(app[PEERS].remove(peer))


def rtc_configuration(config: ServerConfig) -> RTCConfiguration:
    """aiortc configuration with the --ice-server URLs (none: host candidates only)."""
    return RTCConfiguration(iceServers=[ice_server(url) for url in config.ice_servers])


def ice_server(url: str) -> RTCIceServer:
    """`stun:host:port` or `turn:user:secret@host:port` -> RTCIceServer."""
    return RTCIceServer(**ice_server_dict(url))


def ice_server_dict(url: str) -> dict[str, str]:
    """The RTCIceServer fields of a URL, credentials split out (also used by the page)."""
    scheme, _, rest = url.partition(":")
    if "@" in rest and scheme in ("turn", "turns"):
        credentials, _, host = rest.rpartition("@")
        username, _, credential = credentials.partition(":")
        return {"urls": f"{scheme}:{host}", "username": username, "credential": credential}
    return {"urls": url}


def page_config(config: ServerConfig, budget: Budget) -> str:
    """JSON for GET /api/config: ICE servers, limits, and the camera size to open by default."""
    ice = [ice_server_dict(url) for url in config.ice_servers]
    return json.dumps({"iceServers": ice, "maxPeers": config.max_peers, "budget": budget.message()})
