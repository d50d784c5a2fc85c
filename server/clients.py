"""Who a request comes from, for the per-client limits (pending offers, admin token misses)."""

from __future__ import annotations

import functools
import ipaddress

from aiohttp import hdrs, web

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
LOOPBACK = ("127.0.0.0/8", "::1/128")  # a proxy on this machine is always trusted


def client_address(request: web.Request, trusted_proxies: tuple[str, ...] = ()) -> str:
    """The client's address (an IPv6 client's /64); behind a trusted proxy, its client's.

    Only a peer in loopback or --trusted-proxy networks may say who its client is, and only
    through the rightmost X-Forwarded-For entry (the one that proxy appended), so a client
    cannot pick its own.
    """
    remote = request.remote or "?"
    forwarded = request.headers.get(hdrs.X_FORWARDED_FOR)
    if forwarded and in_networks(remote, trusted(trusted_proxies)):
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


@functools.lru_cache(maxsize=8)
def trusted(cidrs: tuple[str, ...]) -> tuple[Network, ...]:
    """The loopback and the --trusted-proxy networks, parsed once."""
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in (*LOOPBACK, *cidrs))


def in_networks(address: str, networks: tuple[Network, ...]) -> bool:
    """Whether an address lies in one of the networks (False for a non-address)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)
