"""Who a request comes from, for the per-client limits (offers, peers, admin token misses, jobs)."""

from __future__ import annotations

import functools
import ipaddress

from aiohttp import hdrs, web

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def client_address(request: web.Request, trusted_proxies: tuple[str, ...] = ()) -> str:
    """The client's address (an IPv6 client's /64); behind a trusted proxy, its client's.

    Only a peer inside a --trusted-proxy network may say who its client is, and only through
    the rightmost X-Forwarded-For hop (the one that proxy appended), so a client cannot pick
    its own: not even a process on this machine, unless the loopback is named a proxy.
    A hop that is not an IP address counts as the proxy itself.
    """
    remote = request.remote or "?"
    if in_networks(remote, trusted(trusted_proxies)):
        hop = forwarded_hop(request)
        if hop is not None:
            remote = hop
    return client_key(remote)


def forwarded_hop(request: web.Request) -> str | None:
    """The rightmost X-Forwarded-For entry over all such headers, if it is an IP address."""
    values = request.headers.getall(hdrs.X_FORWARDED_FOR, [])
    if not values:
        return None
    hop = ",".join(values).rsplit(",", 1)[-1].strip()
    try:
        return str(ipaddress.ip_address(hop))
    except ValueError:
        return None


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
    """The --trusted-proxy networks, parsed once."""
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def in_networks(address: str, networks: tuple[Network, ...]) -> bool:
    """Whether an address lies in one of the networks (False for a non-address)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)
