"""Middleware: one error path (everything a handler raises becomes JSON) and the Host check."""

from __future__ import annotations

import ipaddress
import logging

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler, Middleware

from stylefusion.errors import InvalidInput, StyleFusionError

from .errors import MisdirectedRequest, ServerError

log = logging.getLogger(__name__)

# headers of an aiohttp HTTPException that describe its plain-text body, not the error
BODY_HEADERS = {hdrs.CONTENT_TYPE, hdrs.CONTENT_LENGTH}


def error_status(exc: StyleFusionError) -> int:
    """HTTP status of a domain exception: its own, 400 for bad input, else 500."""
    if isinstance(exc, ServerError):
        return exc.status
    return 400 if isinstance(exc, InvalidInput) else 500


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer errors with `{"error": text}`: domain exceptions and aiohttp's own 4xx/5xx."""
    try:
        return await handler(request)
    except StyleFusionError as exc:
        status = error_status(exc)
        log_error(request, status, exc)
        headers = exc.headers if isinstance(exc, ServerError) else None
        details = exc.details if isinstance(exc, ServerError) else {}
        body = {**details, "error": str(exc)}
        return web.json_response(body, status=status, headers=headers)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json":
            raise  # redirects are answers, not errors; a JSON body is already ours
        headers = {k: v for k, v in exc.headers.items() if k not in BODY_HEADERS}
        return web.json_response({"error": http_message(exc)}, status=exc.status, headers=headers)


def http_message(exc: web.HTTPException) -> str:
    """The text of an aiohttp error: its own text if it has one, else the reason phrase."""
    text = (exc.text or "").strip()
    return exc.reason if not text or text == f"{exc.status}: {exc.reason}" else text


def log_error(request: web.Request, status: int, exc: StyleFusionError) -> None:
    """A traceback for real server faults only; one line for refusals (503) and 4xx."""
    if status == 500:
        log.exception("%s %s failed", request.method, request.path)
    elif status >= 500 and not (isinstance(exc, ServerError) and exc.quiet):
        log.warning("%s %s refused (%d): %s", request.method, request.path, status, exc)
    else:
        log.debug("%s %s -> %d: %s", request.method, request.path, status, exc)


@web.middleware
async def pass_through(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A middleware that does nothing (a check turned off)."""
    return await handler(request)


def host_middleware(allowed: frozenset[str], any_ip: bool) -> Middleware:
    """Refuse requests whose Host header is not allowed (421): DNS rebinding defence."""

    @web.middleware
    async def check_host(request: web.Request, handler: Handler) -> web.StreamResponse:
        host = request.headers.get(hdrs.HOST)
        if host is not None and not host_allowed(host, allowed, any_ip):
            raise MisdirectedRequest(f"this server does not answer for host {host!r}")
        return await handler(request)

    return check_host


def host_allowed(host: str, allowed: frozenset[str], any_ip: bool) -> bool:
    """Whether a Host header value (with or without port) is one we answer for."""
    name = host_name(host)
    return name in allowed or (any_ip and is_ip(name))


def host_name(host: str) -> str:
    """The host part of a Host header, lower case, IPv6 without brackets."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def is_ip(name: str) -> bool:
    """Whether a host name is an IP literal (never the product of DNS rebinding)."""
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True
