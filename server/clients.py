"""Who a request comes from, for the per-client limits (pending offers, admin token misses)."""

from __future__ import annotations

import ipaddress

from aiohttp import hdrs, web


def client_address(request: web.Request) -> str:
    """The peer address; behind a reverse proxy on this machine, the address it forwarded.

    Only a loopback peer is trusted to say who its client is, and only the rightmost
    X-Forwarded-For entry (the one our proxy appended), so a client cannot pick its own.
    """
    remote = request.remote or "?"
    forwarded = request.headers.get(hdrs.X_FORWARDED_FOR)
    if forwarded and is_loopback(remote):
        return forwarded.rsplit(",", 1)[-1].strip() or remote
    return remote


def is_loopback(address: str) -> bool:
    """Whether an address is on the loopback (127.0.0.0/8, ::1)."""
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False
