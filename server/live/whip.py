"""POST /whip/{stream} (RFC 9725): a publisher's camera becomes a stream, stylized once.

OBS Studio (Settings -> Stream -> WHIP), GStreamer's webrtcbin, FFmpeg or the live page's
Share post an `application/sdp` offer with `Authorization: Bearer <publish token>`. The
publisher is a Peer like any /offer viewer: its frames go through the batcher (newest frame
wins, the send budget's size cap applies) but come back to the stream's watchers instead of
to the publisher. Its sound is passed on as it comes. A publisher that opens a `control`
data channel (the live page does) changes style and gets stats and budgets as a viewer does.
"""

from __future__ import annotations

import logging

from aiohttp import web
from aiortc import MediaStreamTrack

from ..clients import client_address
from ..errors import BadRequest
from ..keys import CONFIG, METRICS, PUBLISH_GUARD, STYLES
from .keys import BATCHER, PEERS, RESOURCES, STREAMS
from .peers import Peer
from .sdp_http import created, read_sdp_offer
from .signalling import TrackHandler, chosen_style, drain, open_peer, read_then_leave
from .streams import Stream, check_name
from .track import StylizedTrack

log = logging.getLogger(__name__)


async def publish(request: web.Request) -> web.Response:
    """Answer a publisher's offer: 201 with the answer and the session's Location."""
    app = request.app
    name = check_name(request.match_info["stream"])
    app[PUBLISH_GUARD].authorize(request)  # before reading a body from a stranger
    config, streams = app[CONFIG], app[STREAMS]
    sdp = await read_sdp_offer(request, config)
    style = chosen_style(app[STYLES], request.query.get("style"))
    remote = client_address(request, config.trusted_proxies)
    stream = streams.reserve(name)  # 409 if the name is taken, 503 past --max-streams
    try:
        # a publisher that vanishes without a DTLS goodbye is otherwise noticed only when ICE
        # consent fails, about 30 s later: its watchers would stare at a frozen frame
        tracks = publisher_tracks(app, stream)
        peer, answer = await open_peer(
            app, remote, style, sdp, tracks, config.publisher_timeout_s, dtls_server=True
        )
    except BaseException:
        await streams.end(stream)
        raise
    if peer.closed:  # gone while it was being answered (evicted, shut down)
        await streams.end(stream)
        raise BadRequest("the publisher's connection closed while it was being answered")
    stream.publisher = peer
    peer.on_close(lambda: streams.end(stream))
    resource = app[RESOURCES].add("whip", name, peer, sdp, lambda: app[PEERS].remove(peer))
    log.info("%s publishes stream %s in style %s", peer.id, name, style)
    return created(resource, answer.sdp, config)


def publisher_tracks(app: web.Application, stream: Stream) -> TrackHandler:
    """The publisher's first video track is stylized for the stream, its first audio passed on."""
    taken: set[str] = set()

    def on_track(peer: Peer, track: MediaStreamTrack) -> None:
        if track.kind in taken:  # a second camera or microphone: nobody would see it
            peer.spawn(drain(track), f"drain-{track.kind}")
            return
        taken.add(track.kind)
        if track.kind == "video":
            stylized = StylizedTrack(track, peer, app[BATCHER], app[METRICS])
            peer.spawn(read_then_leave(app, peer, stylized), "reader")
            peer.spawn(stream.carry_video(stylized), "fanout-video")
        else:
            peer.spawn(stream.carry_audio(track), "fanout-audio")

    return on_track
