"""Reading and vetting a POST /offer body before aiortc sees any of it.

Cheap checks first: content type (a cross-site form cannot send JSON), body cap and read
timeout, JSON (depth bombs included: server/json_body.py), then the SDP's size in m-lines
and candidates, and the --ice-allow networks its candidates must be in.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from aiohttp import web

from ..config import ServerConfig
from ..errors import BadRequest, UnsupportedMedia
from ..json_body import read_json

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


async def read_offer(request: web.Request, config: ServerConfig) -> tuple[str, str | None]:
    """Parse and vet the body `{"sdp", "type": "offer", "style"?}`; returns (sdp, style)."""
    if request.content_type != "application/json":
        raise UnsupportedMedia("POST /offer takes Content-Type: application/json")
    body = await read_json(request, config.max_offer_bytes, config.body_timeout_s)
    sdp, style = offer_fields(body)
    return vet_sdp(sdp, config), style


def offer_fields(body: Any) -> tuple[str, str | None]:
    """The offer's `sdp` and `style` fields, type-checked."""
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


def vet_sdp(sdp: str, config: ServerConfig) -> str:
    """Refuse offers with too many m-lines or candidates; drop candidates outside --ice-allow."""
    lines = sdp.splitlines()
    media = sum(line.startswith("m=") for line in lines)
    if media > config.max_offer_media:
        raise BadRequest(f"the offer has {media} m-lines; at most {config.max_offer_media}")
    candidates = [line for line in lines if line.startswith("a=candidate:")]
    if len(candidates) > config.max_offer_candidates:
        raise BadRequest(
            f"the offer has {len(candidates)} candidates; at most {config.max_offer_candidates}"
        )
    if not config.ice_allow:
        return sdp
    networks = allowed_networks(config.ice_allow)
    kept = [line for line in lines if line not in candidates or in_networks(line, networks)]
    return "\r\n".join(kept) + "\r\n"


def allowed_networks(cidrs: tuple[str, ...]) -> list[Network]:
    """--ice-allow CIDRs as networks (validated by the CLI edge)."""
    return [ipaddress.ip_network(cidr, strict=False) for cidr in cidrs]


def in_networks(candidate: str, networks: list[Network]) -> bool:
    """Whether an `a=candidate:` line names an IP address inside one of the networks."""
    fields = candidate.split()
    try:
        address = ipaddress.ip_address(fields[4])
    except (IndexError, ValueError):  # malformed, or an mDNS name we cannot check
        return False
    return any(address in network for network in networks)
