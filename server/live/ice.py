"""ICE servers for the server's own peers and for the page, TURN credentials included.

Static `turn:user:pass@host` credentials stay on the server: the page never sees them.
With --turn-secret, both sides get short-lived credentials in the coturn REST-API scheme
(username `<expiry unix time>:stylefusion`, password base64(HMAC-SHA1(secret, username))),
so what the page can read is worthless after --turn-ttl seconds.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from aiortc import RTCConfiguration, RTCIceServer

from ..config import ServerConfig

TURN_USER = "stylefusion"


def rtc_configuration(config: ServerConfig) -> RTCConfiguration:
    """aiortc configuration with the --ice-server URLs (none: host candidates only)."""
    servers = ice_servers(config, for_page=False, now=time.time())
    return RTCConfiguration(iceServers=[RTCIceServer(**server) for server in servers])


def page_ice_servers(config: ServerConfig) -> list[dict[str, str]]:
    """The ICE servers for GET /api/config (anyone can read it: no static TURN passwords)."""
    return ice_servers(config, for_page=True, now=time.time())


def ice_servers(config: ServerConfig, for_page: bool, now: float) -> list[dict[str, str]]:
    """RTCIceServer fields of every usable URL; static TURN credentials never go to the page."""
    servers = []
    for url in config.ice_servers:
        server: dict[str, str] | None = ice_server_dict(url)
        if is_turn(url):
            server = turn_server(server, config, for_page, now)
        if server is not None:
            servers.append(server)
    return servers


def turn_server(
    server: dict[str, str], config: ServerConfig, for_page: bool, now: float
) -> dict[str, str] | None:
    """A TURN entry with the credentials this side may have, or None if it gets none."""
    if "username" in server:  # static credentials: the server's own
        return None if for_page else server
    if config.turn_secret:
        return {**server, **turn_credentials(config.turn_secret, config.turn_ttl_s, now)}
    return None  # a TURN server without credentials is of no use


def is_turn(url: str) -> bool:
    """Whether a URL names a TURN server (turn: or turns:)."""
    return url.partition(":")[0] in ("turn", "turns")


def ice_server_dict(url: str) -> dict[str, str]:
    """`stun:host:port` or `turn:user:secret@host:port` -> RTCIceServer fields."""
    scheme, _, rest = url.partition(":")
    if "@" in rest and is_turn(url):
        credentials, _, host = rest.rpartition("@")
        username, _, credential = credentials.partition(":")
        return {"urls": f"{scheme}:{host}", "username": username, "credential": credential}
    return {"urls": url}


def turn_credentials(secret: str, ttl_s: int, now: float) -> dict[str, str]:
    """coturn REST-API credentials valid until now + ttl_s."""
    username = f"{int(now) + ttl_s}:{TURN_USER}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return {"username": username, "credential": base64.b64encode(digest).decode()}
