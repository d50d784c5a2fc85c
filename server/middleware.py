"""Error middleware: domain exceptions become JSON error answers at the edge."""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.typedefs import Handler

from stylefusion.errors import InvalidInput, StyleFusionError

from .errors import ServerError

log = logging.getLogger(__name__)


def error_status(exc: StyleFusionError) -> int:
    """HTTP status of a domain exception: its own, 400 for bad input, else 500."""
    if isinstance(exc, ServerError):
        return exc.status
    return 400 if isinstance(exc, InvalidInput) else 500


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer StyleFusionError with `{"error": text}` and the matching status."""
    try:
        return await handler(request)
    except StyleFusionError as exc:
        status = error_status(exc)
        if status >= 500:
            log.exception("%s %s failed", request.method, request.path)
        return web.json_response({"error": str(exc)}, status=status)
