"""JSON request bodies: read under a byte cap and a deadline, parsed with one depth guard.

Every JSON the server takes from outside (POST /offer, PATCH /api/styles, control messages)
goes through parse_json, so a nesting bomb is a 400 (or an error event) everywhere, never a
RecursionError traceback and a 500.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import StreamReader, web

from .errors import BadRequest, PayloadTooLarge, RequestTimeout


async def read_json(request: web.Request, limit: int, timeout_s: float) -> Any:
    """The body as JSON: at most `limit` bytes (413), within `timeout_s` (408), else 400."""
    return parse_json(await read_body(request, limit, timeout_s))


async def read_body(request: web.Request, limit: int, timeout_s: float) -> bytes:
    """The request body, at most `limit` bytes (413) within `timeout_s` (408)."""
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"the body is over {limit} bytes")
    try:
        async with asyncio.timeout(timeout_s):
            body = await read_at_most(request.content, limit + 1)
    except TimeoutError:
        raise RequestTimeout(f"the body did not arrive within {timeout_s:g} s") from None
    if len(body) > limit:
        raise PayloadTooLarge(f"the body is over {limit} bytes")
    return body


async def read_at_most(stream: StreamReader, size: int) -> bytes:
    """Up to `size` bytes of a stream (fewer only at its end)."""
    chunks: list[bytes] = []
    left = size
    while left > 0 and (chunk := await stream.read(left)):
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def parse_json(data: bytes | str, what: str = "the body") -> Any:
    """JSON, or BadRequest for anything else (invalid text, nesting too deep for Python)."""
    try:
        return json.loads(data)
    except (TypeError, ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise BadRequest(f"{what} must be JSON") from None
