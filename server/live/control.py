"""The `control` data channel: style and strength requests in, acks, errors and stats out."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

from aiortc import RTCDataChannel

from ..errors import BadRequest
from ..json_body import parse_json
from ..services import StyleCatalog
from .peers import Message, Peer
from .rate import ControlRate, Verdict

log = logging.getLogger(__name__)

LABEL = "control"


def attach_control(
    peer: Peer,
    channel: RTCDataChannel,
    registry: StyleCatalog,
    stats_interval_s: float,
    rate: ControlRate,
    on_flood: Callable[[], None],
) -> None:
    """Wire a peer's control channel: handle its messages as fast as `rate` allows (past it,
    error events, and `on_flood` once the peer keeps going), send stats about once a second."""

    def send(message: Message) -> None:
        if channel.readyState == "open":
            channel.send(json.dumps(message))

    @channel.on("message")
    def on_message(raw: Any) -> None:
        verdict = rate.admit()
        if verdict is Verdict.ACCEPT:
            handle_message(peer, registry, raw)
        elif verdict is Verdict.REFUSE:
            limit = f"{rate.allowed.rate:g} a second"
            peer.send({"event": "error", "error": f"too many control messages (at most {limit})"})
        elif verdict is Verdict.FLOOD:
            on_flood()

    peer.send = send
    peer.spawn(send_stats(peer, stats_interval_s), "stats")


def handle_message(peer: Peer, registry: StyleCatalog, raw: Any) -> None:
    """Apply `{"style": name}` and/or `{"strength": 0..1}`; reply with an error event if bad."""
    try:
        style, strength = parse_request(raw, registry)
    except BadRequest as exc:
        peer.send({"event": "error", "error": str(exc)})
        return
    if strength is not None:
        peer.strength = strength
    if style is not None:
        log.debug("%s switches to style %s", peer.id, style)  # DEBUG: a page may click a lot
        peer.request_style(style)


def parse_request(raw: Any, registry: StyleCatalog) -> tuple[str | None, float | None]:
    """Validate a control message; returns (style or None, strength or None)."""
    return style_request(parse_json(raw, "control messages"), registry)


def style_request(message: Any, registry: StyleCatalog) -> tuple[str | None, float | None]:
    """`{"style"?, "strength"?}` checked (a control message, or PATCH /api/streams/NAME)."""
    if not isinstance(message, dict) or not ({"style", "strength"} & message.keys()):
        raise BadRequest('expected a JSON object with "style" and/or "strength"')
    style, strength = message.get("style"), message.get("strength")
    if style is not None and (not isinstance(style, str) or style not in registry):
        known = ", ".join(s.name for s in registry.styles())
        raise BadRequest(f"unknown style {style!r} (available: {known})")
    if strength is not None:
        if isinstance(strength, bool) or not isinstance(strength, int | float):
            raise BadRequest("strength must be a number from 0 to 1")
        if not 0.0 <= strength <= 1.0:
            raise BadRequest(f"strength must be within 0..1, got {strength}")
        strength = float(strength)
    return style, strength


async def send_stats(peer: Peer, interval_s: float) -> None:
    """Send `{"event": "stats", ...}` every interval_s seconds until the peer closes."""
    while True:
        await asyncio.sleep(interval_s)
        peer.send(peer.take_stats())
