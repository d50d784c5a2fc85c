"""SDP over HTTP as WHIP (RFC 9725) and WHEP speak it: offer bodies, 201 answers, sessions.

POST an `application/sdp` offer to an endpoint (/whip/NAME, /whep/NAME) and the answer comes
back 201 Created with a Location: the session's URL, named by an unguessable key (the URL is
the capability to end it). PATCH it with `application/trickle-ice-sdpfrag` to trickle
candidates (If-Match: the ETag of the 201, or `*`); DELETE it to end the session. OPTIONS
says which methods each URL takes. The offer passes the same checks as a POST /offer body.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from multidict import CIMultiDict

from ..config import ServerConfig
from ..errors import (
    BadRequest,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
    Unprocessable,
    UnsupportedMedia,
)
from ..json_body import read_body
from ..keys import CONFIG
from .ice import page_ice_servers
from .offers import allowed_networks, vet_sdp
from .session import Hook, Session
from .trickle import FragmentError, RemoteIce, apply_fragment, parse_fragment

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SDP = "application/sdp"
SDPFRAG = "application/trickle-ice-sdpfrag"
ENDPOINT_METHODS = "OPTIONS, POST"
SESSION_METHODS = "OPTIONS, PATCH, DELETE"


async def read_sdp_offer(request: web.Request, config: ServerConfig) -> str:
    """The `application/sdp` body of a WHIP/WHEP POST, vetted like an /offer's SDP."""
    if request.content_type != SDP:
        raise UnsupportedMedia(f"{request.path} takes Content-Type: {SDP}")
    text = _text(await read_body(request, config.max_offer_bytes, config.body_timeout_s))
    if not text.lstrip().startswith("v=0"):
        raise BadRequest("the body must be an SDP offer (it starts with v=0)")
    return vet_sdp(text, config)


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("the body must be UTF-8 text") from None


@dataclass
class Resource:
    """A WHIP or WHEP session as an HTTP resource: where it lives, its ETag, its remote ICE."""

    kind: str  # "whip" or "whep"
    stream: str
    key: str  # the last segment of its URL
    session: Session
    ice: RemoteIce
    end: Hook  # what DELETE does
    etag: str

    @property
    def location(self) -> str:
        """The session URL (the Location of the 201)."""
        return f"/{self.kind}/{self.stream}/{self.key}"


class Resources:
    """The session URLs handed out; each disappears when its session closes."""

    def __init__(self) -> None:
        self._by_url: dict[tuple[str, str, str], Resource] = {}

    def add(self, kind: str, stream: str, session: Session, offer: str, end: Hook) -> Resource:
        """A new session URL for a session answered from `offer`."""
        key, etag = secrets.token_urlsafe(16), f'"{secrets.token_urlsafe(12)}"'
        resource = Resource(kind, stream, key, session, RemoteIce.of_offer(offer), end, etag)
        url = (kind, stream, key)
        self._by_url[url] = resource

        async def forget() -> None:
            self._by_url.pop(url, None)

        session.on_close(forget)
        return resource

    def find(self, request: web.Request, kind: str) -> Resource:
        """The resource a session URL names, or NotFound."""
        info = request.match_info
        resource = self._by_url.get((kind, info["stream"], info["session"]))
        if resource is None:
            raise NotFound(f"no {kind.upper()} session at {request.path}")
        return resource


def created(resource: Resource, answer: str, config: ServerConfig) -> web.Response:
    """201 Created: the SDP answer, Location, ETag, and the ICE servers as Link headers."""
    headers = CIMultiDict(
        {
            "Content-Type": SDP,
            "Location": resource.location,
            "ETag": resource.etag,
            "Accept-Patch": SDPFRAG,
        }
    )
    for link in ice_links(config):
        headers.add("Link", link)
    return web.Response(status=201, body=answer.encode(), headers=headers)


def ice_links(config: ServerConfig) -> list[str]:
    """RFC 9725 section 4.6 Link headers: the ICE servers a page may use (no static TURN)."""
    links = []
    for server in page_ice_servers(config):
        link = f'<{server["urls"]}>; rel="ice-server"'
        if "username" in server:
            link += (
                f'; username="{server["username"]}"; credential="{server["credential"]}"'
                '; credential-type="password"'
            )
        links.append(link)
    return links


def options(allow: str, **extra: str) -> web.Response:
    """204 with what a URL allows (no CORS: the pages are served from the same origin)."""
    return web.Response(status=204, headers={"Allow": allow, **extra})


async def endpoint_options(request: web.Request) -> web.Response:
    """OPTIONS /whip/NAME, /whep/NAME."""
    return options(ENDPOINT_METHODS, **{"Accept-Post": SDP})


async def session_options(request: web.Request) -> web.Response:
    """OPTIONS on a session URL."""
    return options(SESSION_METHODS, **{"Accept-Patch": SDPFRAG})


async def trickle(request: web.Request, resource: Resource, config: ServerConfig) -> web.Response:
    """PATCH a session URL: add the trickled candidates (204); ICE restarts get 422."""
    check_if_match(request, resource.etag)
    if request.content_type != SDPFRAG:
        raise UnsupportedMedia(f"PATCH takes Content-Type: {SDPFRAG}")
    text = _text(await read_body(request, config.max_offer_bytes, config.body_timeout_s))
    try:
        fragment = parse_fragment(text)
    except FragmentError as exc:
        raise BadRequest(str(exc)) from None
    ice = resource.ice
    if fragment.restarts(ice):
        raise Unprocessable("ICE restarts are not supported: DELETE this session, POST a new one")
    if ice.candidates + len(fragment.candidates) > config.max_offer_candidates:
        raise BadRequest(f"a session takes at most {config.max_offer_candidates} candidates")
    networks = allowed_networks(config.ice_allow) if config.ice_allow else None
    added = await apply_fragment(resource.session.pc, fragment, ice, networks)
    log.debug("%s: %d trickled candidate(s)%s", resource.session.id, added, fragment.end * " +end")
    return web.Response(status=204, headers={"ETag": resource.etag})


def check_if_match(request: web.Request, etag: str) -> None:
    """RFC 9725 4.3.1: 428 without If-Match, 412 unless it is `*` or names the ETag."""
    header = request.headers.get("If-Match")
    if header is None:
        raise PreconditionRequired(f"PATCH needs If-Match: {etag} (the ETag of the 201)")
    tags = {tag.strip() for tag in header.split(",")}
    if "*" not in tags and etag not in tags:
        raise PreconditionFailed("If-Match names another ICE session")


async def end_session(resource: Resource) -> web.Response:
    """DELETE a session URL: end it (200)."""
    await resource.end()
    return web.Response(status=200)


def add_sdp_routes(app: web.Application, kind: str, post: Handler, resources: Resources) -> None:
    """An endpoint /KIND/{stream} (POST, OPTIONS) and its session URLs (PATCH, DELETE)."""
    endpoint = f"/{kind}/{{stream}}"
    session = endpoint + "/{session}"

    async def patch(request: web.Request) -> web.Response:
        return await trickle(request, resources.find(request, kind), request.app[CONFIG])

    async def delete(request: web.Request) -> web.Response:
        return await end_session(resources.find(request, kind))

    app.router.add_post(endpoint, post)
    app.router.add_route("OPTIONS", endpoint, endpoint_options)
    app.router.add_patch(session, patch)
    app.router.add_delete(session, delete)
    app.router.add_route("OPTIONS", session, session_options)
