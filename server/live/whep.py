"""POST /whep/{stream}: a watcher gets the stream's stylized video (and its sound).

The watcher's senders read outlets of the stream's fan-outs: frames stylized once for the
stream, encoded by each watcher's own encoder at its own bitrate. Watching is open unless
--watch-token is set; an unknown stream is a 404 (the watch page retries until it is live).
"""

from __future__ import annotations

import logging

from aiohttp import web
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSctpTransport, RTCSessionDescription

from ..clients import client_address
from ..errors import BadRequest, NotFound
from ..keys import CONFIG, WATCH_GUARD
from .dtls import answer_as_dtls_server
from .ice import rtc_configuration
from .keys import RESOURCES, STREAMS
from .message_cap import cap_messages
from .sdp_http import created, read_sdp_offer
from .session import check_pending, drop_if_never_connected
from .signalling import drain
from .streams import StreamSet, Watcher, check_name

log = logging.getLogger(__name__)


async def watch(request: web.Request) -> web.Response:
    """Answer a watcher's offer: 201 with the answer and the session's Location."""
    app = request.app
    name = check_name(request.match_info["stream"])
    guard = app[WATCH_GUARD]
    if guard is not None:
        guard.authorize(request)
    config, streams = app[CONFIG], app[STREAMS]
    sdp = await read_sdp_offer(request, config)
    stream = streams.live(name)  # 404 until someone publishes it
    remote = client_address(request, config.trusted_proxies)
    check_pending(streams.watchers(), remote, config)
    watcher = Watcher(RTCPeerConnection(rtc_configuration(config)), stream)
    watcher.remote = remote
    streams.admit(watcher)  # 503 past --max-watchers
    try:
        answer = await answer_watcher(app, watcher, sdp)
    except Exception as exc:  # noqa: BLE001 - whatever aiortc rejects is the offer's fault
        await streams.leave(watcher)
        if watcher.stream.ended:
            raise NotFound(f"stream {name!r} ended") from None
        if isinstance(exc, BadRequest):
            raise
        log.info("rejected WHEP offer: %r", exc)
        raise BadRequest(f"unusable SDP offer: {exc}") from exc

    async def leave() -> None:
        await streams.leave(watcher)

    watcher.spawn(drop_if_never_connected(watcher, leave, config.connect_timeout_s), "reap")
    resource = app[RESOURCES].add("whep", name, watcher, sdp, leave)
    return created(resource, answer.sdp, config)


async def answer_watcher(app: web.Application, watcher: Watcher, sdp: str) -> RTCSessionDescription:
    """Apply the offer, attach the stream's outlets to the senders, return the answer."""
    pc, streams = watcher.pc, app[STREAMS]
    wire_watcher(watcher, streams)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
    if pc.sctp is not None:  # a data channel nobody reads still must not eat memory
        cap_watcher_messages(watcher, streams, pc.sctp, app[CONFIG].max_message_bytes)
    kinds = {t.kind for t in pc.getTransceivers()}
    if "video" not in kinds:
        raise BadRequest("the offer has no video to receive")
    for outlet in watcher.subscribe():
        if outlet.kind in kinds:
            pc.addTrack(outlet)
        else:
            outlet.stop()  # the stream has sound, the watcher takes none
    answer_as_dtls_server(pc)
    await pc.setLocalDescription(await pc.createAnswer())
    return pc.localDescription


def wire_watcher(watcher: Watcher, streams: StreamSet) -> None:
    """Drop what a watcher sends; it leaves when its connection fails or closes."""
    pc = watcher.pc

    @pc.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        watcher.spawn(drain(track), f"drain-{track.kind}")  # watchers send nothing we use

    @pc.on("connectionstatechange")
    async def on_state() -> None:
        log.info("%s connection %s", watcher.id, pc.connectionState)
        if pc.connectionState in ("failed", "closed"):
            await streams.leave(watcher)


def cap_watcher_messages(
    watcher: Watcher, streams: StreamSet, sctp: RTCSctpTransport, limit: int
) -> None:
    """The data-channel message cap of /offer peers; a watcher that floods is dropped."""

    def flood() -> None:
        log.warning("%s floods its data channel; dropping it", watcher.id)
        watcher.spawn(streams.leave(watcher), "evict")

    cap_messages(sctp, limit, lambda: None, flood)
