"""The admin bearer token: where it comes from and the constant-time check."""

from __future__ import annotations

import hmac
import logging
import os
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

log = logging.getLogger(__name__)

ENV_VAR = "STYLEFUSION_ADMIN_TOKEN"
TOKEN_FILE = "admin-token"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def load_token(configured: str | None, data_dir: Path) -> str:
    """The configured token, else the env var, else one generated once and kept in data_dir."""
    token = configured or os.environ.get(ENV_VAR)
    if token:
        return token
    path = Path(data_dir) / TOKEN_FILE
    if path.is_file():
        stored = path.read_text(encoding="utf-8").strip()
        if stored:
            return stored
    token = secrets.token_urlsafe(24)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(token + "\n")
    os.chmod(path, 0o600)  # in case the file existed (empty) with wider permissions
    log.warning("generated admin token (kept in %s): %s", path, token)
    return token


def token_matches(header: str | None, token: str) -> bool:
    """Whether an Authorization header carries `Bearer <token>` (constant-time compare)."""
    if not header:
        return False
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode("utf-8"), token.encode("utf-8"))


def require_token(token: str, handler: Handler) -> Handler:
    """Wrap a handler so it answers 401 JSON unless the request carries the admin token."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        if not token_matches(request.headers.get("Authorization"), token):
            return web.json_response(
                {"error": "missing or wrong admin token (send 'Authorization: Bearer <token>')"},
                status=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        return await handler(request)

    return guarded
