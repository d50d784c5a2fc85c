"""The streams as HTTP: GET /api/streams, PATCH /api/streams/{stream}, GET /watch/{stream}."""

from __future__ import annotations

from aiohttp import web

from ..errors import UnsupportedMedia
from ..json_body import read_json
from ..keys import CONFIG, PUBLISH_GUARD, STYLES, WATCH_GUARD
from .control import style_request
from .keys import STREAMS
from .streams import check_name

NO_CACHE = {"Cache-Control": "no-cache"}


async def list_streams(request: web.Request) -> web.Response:
    """GET /api/streams: name, style, watchers and fps of every stream (watch token if set)."""
    guard = request.app[WATCH_GUARD]
    if guard is not None:
        guard.authorize(request)
    return web.json_response({"streams": request.app[STREAMS].listing()})


async def restyle(request: web.Request) -> web.Response:
    """PATCH /api/streams/{stream} `{"style"?, "strength"?}` (publish or admin token)."""
    app = request.app
    name = check_name(request.match_info["stream"])
    app[PUBLISH_GUARD].authorize(request)
    stream = app[STREAMS].live(name)
    if request.content_type != "application/json":
        raise UnsupportedMedia("PATCH /api/streams/NAME takes Content-Type: application/json")
    config = app[CONFIG]
    body = await read_json(request, config.max_message_bytes, config.body_timeout_s)
    style, strength = style_request(body, app[STYLES])  # what a control message may say
    peer = stream.publisher
    assert peer is not None  # live() returns published streams only
    if strength is not None:
        peer.strength = strength
    if style is not None:
        peer.request_style(style)
    return web.json_response(stream.listing())


async def watch_page(request: web.Request) -> web.FileResponse:
    """GET /watch/{stream}: the full-window WHEP player (it waits for the stream to go live)."""
    check_name(request.match_info["stream"])
    return web.FileResponse(request.app[CONFIG].web_dir / "watch.html", headers=NO_CACHE)
