"""POST /offer: admit a peer, answer its SDP offer, wire its tracks and data channel.

open_peer() admits any peer that sends a camera: a viewer of /offer or a publisher of /whip.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable

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
from ..services import StyleCatalog
from .budget import Budget
from .control import LABEL, attach_control
from .dtls import answer_as_dtls_server
from .ice import page_ice_servers, rtc_configuration
from .keys import BATCHER, BUDGET, PEERS
from .message_cap import cap_messages
from .offers import read_offer
from .peers import Peer
from .rate import ControlRate
from .rtp import install_latest_frame_queues, install_marker_jitter_buffers
from .session import drop_if_never_connected
from .track import StylizedTrack

log = logging.getLogger(__name__)

TrackHandler = Callable[[Peer, MediaStreamTrack], None]  # what to do with an incoming track


async def offer(request: web.Request) -> web.Response:
    """Answer a WebRTC offer with a stylized video track; 4xx on bad input, 503 at capacity."""
    app = request.app
    sdp, style = await read_offer(request, app[CONFIG])
    style = chosen_style(app[STYLES], style)
    remote = client_address(request, app[CONFIG].trusted_proxies)
    _, answer = await open_peer(app, remote, style, sdp, viewer_tracks(app))
    return web.json_response({"sdp": answer.sdp, "type": answer.type})


def chosen_style(registry: StyleCatalog, style: str | None) -> str:
    """The style a new peer asks for, else the default; 400 if unknown, 503 if none is loaded."""
    style = style or registry.default
    if style is None:  # an empty models dir: the first trained style makes the server ready
        raise WarmingUp("no style is loaded yet")
    if style not in registry:
        raise BadRequest(f"unknown style {style!r}")
    return style


async def open_peer(
    app: web.Application,
    remote: str,
    style: str,
    sdp: str,
    on_track: TrackHandler,
    video_timeout_s: float | None = None,
    dtls_server: bool = False,
) -> tuple[Peer, RTCSessionDescription]:
    """Admit a peer that sends a camera (a viewer or a publisher) and answer its offer.

    Raises TooManyRequests, AtCapacity, or BadRequest for an offer aiortc cannot use; once
    connected, the peer is dropped after video_timeout_s without video (default: the config's).
    dtls_server: answer as the DTLS server (WHIP clients, see dtls.py).
    """
    peers, config = app[PEERS], app[CONFIG]
    peers.check_client(
        remote, config.max_pending_per_client, config.max_peers_per_client, config.connect_timeout_s
    )
    peers.check_room()  # before building a connection that would only be thrown away
    peer = Peer(RTCPeerConnection(rtc_configuration(config)), style, app[STYLES])
    peer.remote = remote
    peer.video_timeout_s = video_timeout_s or config.video_timeout_s
    peers.add(peer)  # before any await, so concurrent offers cannot exceed max_peers
    try:
        answer = await negotiate(app, peer, sdp, on_track, dtls_server)
    except Exception as exc:  # noqa: BLE001 - whatever aiortc rejects is the offer's fault
        await peers.remove(peer)
        if isinstance(exc, BadRequest):
            raise
        log.info("rejected offer: %r", exc)
        raise BadRequest(f"unusable SDP offer: {exc}") from exc
    reap = drop_if_never_connected(
        peer, lambda: peers.drop(peer, "never_connected"), config.connect_timeout_s
    )
    peer.spawn(reap, "connect-timeout")
    return peer, answer


async def negotiate(
    app: web.Application, peer: Peer, sdp: str, on_track: TrackHandler, dtls_server: bool = False
) -> RTCSessionDescription:
    """Apply the offer, wire the tracks and control channel, return the answer."""
    pc = peer.pc
    wire_events(app, peer, on_track)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
    if pc.sctp is not None:
        cap_control_messages(app, peer, pc.sctp)
    if not any(t.kind == "video" for t in pc.getTransceivers()):
        raise BadRequest("the offer has no video track")
    if app[CONFIG].marker_bit:
        install_marker_jitter_buffers(pc)
    install_latest_frame_queues(pc, app[METRICS].decoder_dropped.inc)
    if dtls_server:
        answer_as_dtls_server(pc)
    await pc.setLocalDescription(await pc.createAnswer())
    return pc.localDescription


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


def wire_events(app: web.Application, peer: Peer, on_track: TrackHandler) -> None:
    """Connect the peer connection's events to the tracks, control channel and clean-up."""
    pc, peers = peer.pc, app[PEERS]
    pc.on("track", lambda track: on_track(peer, track))

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


def viewer_tracks(app: web.Application) -> TrackHandler:
    """A viewer's camera comes back stylized on its own connection; its microphone is dropped."""

    def on_track(peer: Peer, track: MediaStreamTrack) -> None:
        if track.kind != "video":
            peer.spawn(drain(track), f"drain-{track.kind}")
            return
        stylized = StylizedTrack(track, peer, app[BATCHER], app[METRICS])
        peer.pc.addTrack(stylized)
        peer.spawn(read_then_leave(app, peer, stylized), "reader")

    return on_track


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


async def drop_if_no_video(app: web.Application, peer: Peer) -> None:
    """Remove a connected peer that sends no video for video_timeout_s (it would hog a slot;
    a publisher's watchers would stare at a frozen frame)."""
    timeout = peer.video_timeout_s
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
