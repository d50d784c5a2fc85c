"""The `control` data channel: style, strength and blend requests in; acks, errors, stats out."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiortc import RTCDataChannel

from ..errors import BadRequest
from ..json_body import parse_json
from ..services import StyleCatalog
from .batcher import Blend
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


@dataclass(frozen=True)
class ControlRequest:
    """A valid control message: what to change (None: leave it)."""

    style: str | None = None
    strength: float | None = None
    blend: Blend | None = None  # (second style, amount); amount 0 turns the blend off


def handle_message(peer: Peer, registry: StyleCatalog, raw: Any) -> None:
    """Apply `{"style": name}`, `{"strength": 0..1}` and/or `{"blend": {"style", "amount"}}`;
    reply with an error event if bad."""
    try:
        request = parse_request(raw, registry)
        if request.blend is not None and request.blend[1] > 0:
            check_blend(registry, request.style or peer.style, request.blend[0])
    except BadRequest as exc:
        peer.send({"event": "error", "error": str(exc)})
        return
    if request.strength is not None:
        peer.strength = request.strength
    if request.style is not None:
        log.debug("%s switches to style %s", peer.id, request.style)  # DEBUG: pages click a lot
        peer.request_style(request.style)
    if request.blend is not None:
        peer.request_blend(*request.blend)
    elif peer.blend is not None and not blendable(registry, peer.style, peer.blend[0]):
        error = f"blend with {peer.blend[0]!r} is off: {peer.style!r} is another network"
        peer.send({"event": "error", "error": error})
        peer.request_blend(peer.blend[0], 0.0)


def parse_request(raw: Any, registry: StyleCatalog) -> ControlRequest:
    """Validate a control message (each field on its own)."""
    message = parse_json(raw, "control messages")
    if not isinstance(message, dict) or not ({"style", "strength", "blend"} & message.keys()):
        raise BadRequest('expected a JSON object with "style", "strength" and/or "blend"')
    style, strength = None, None
    if {"style", "strength"} & message.keys():
        style, strength = style_request(message, registry)
    blend = parse_blend(message["blend"], registry) if "blend" in message else None
    return ControlRequest(style, strength, blend)


def style_request(message: Any, registry: StyleCatalog) -> tuple[str | None, float | None]:
    """`{"style"?, "strength"?}` checked (a control message, or PATCH /api/streams/NAME)."""
    if not isinstance(message, dict) or not ({"style", "strength"} & message.keys()):
        raise BadRequest('expected a JSON object with "style" and/or "strength"')
    style, strength = message.get("style"), message.get("strength")
    if style is not None:
        style = known_style(style, registry)
    if strength is not None:
        strength = fraction(strength, "strength")
    return style, strength


def parse_blend(blend: Any, registry: StyleCatalog) -> Blend:
    """`{"style": name, "amount": 0..1}` checked."""
    if not isinstance(blend, dict) or set(blend) != {"style", "amount"}:
        raise BadRequest('blend must be {"style": name, "amount": 0..1}')
    return known_style(blend["style"], registry), fraction(blend["amount"], "amount")


def check_blend(registry: StyleCatalog, style: str, other: str) -> None:
    """A blend mixes norms, so it needs two styles of one multi-style network."""
    if not blendable(registry, style, other):
        raise BadRequest(
            f"style {other!r} cannot be blended into {style!r}: only styles of one "
            "multi-style network blend"
        )


def blendable(registry: StyleCatalog, style: str, other: str) -> bool:
    """Whether `other` can be mixed into `style` (styles gone are left to the fallback)."""
    if style not in registry or other not in registry:
        return True
    return registry.model(style).network == registry.model(other).network


def known_style(name: Any, registry: StyleCatalog) -> str:
    """A loaded style's name, else a BadRequest that lists the loaded ones."""
    if not isinstance(name, str) or name not in registry:
        known = ", ".join(s.name for s in registry.styles())
        raise BadRequest(f"unknown style {name!r} (available: {known})")
    return name


def fraction(value: Any, what: str) -> float:
    """A number within 0..1, else a BadRequest naming `what`."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequest(f"{what} must be a number from 0 to 1")
    if not 0.0 <= value <= 1.0:
        raise BadRequest(f"{what} must be within 0..1, got {value}")
    return float(value)


async def send_stats(peer: Peer, interval_s: float) -> None:
    """Send `{"event": "stats", ...}` every interval_s seconds until the peer closes."""
    while True:
        await asyncio.sleep(interval_s)
        peer.send(peer.take_stats())
