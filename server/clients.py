"""Who a request comes from, for the per-client limits (pending offers, admin token misses)."""

from __future__ import annotations

import ipaddress

from aiohttp import hdrs, web


def client_address(request: web.Request) -> str:
    """The client's address (an IPv6 client's /64); behind a local reverse proxy, its client's.

    Only a loopback peer is trusted to say who its client is, and only the rightmost
    X-Forwarded-For entry (the one our proxy appended), so a client cannot pick its own.
    """
    remote = request.remote or "?"
    forwarded = request.headers.get(hdrs.X_FORWARDED_FOR)
    if forwarded and is_loopback(remote):
        remote = forwarded.rsplit(",", 1)[-1].strip() or remote
    return client_key(remote)


def client_key(address: str) -> str:
    """An IPv4 address as is; an IPv6 one as its /64, since one host holds a whole /64."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and not ip.is_loopback:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def is_loopback(address: str) -> bool:
    """Whether an address is on the loopback (127.0.0.0/8, ::1)."""
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False
