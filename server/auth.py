"""Bearer tokens (admin, publish, watch): where they come from, the constant-time check, and
throttling of wrong ones."""

from __future__ import annotations

import hmac
import logging
import os
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from .clients import client_address
from .errors import ConfigError, TooManyRequests, Unauthorized

log = logging.getLogger(__name__)

ENV_VAR = "STYLEFUSION_ADMIN_TOKEN"
TOKEN_FILE = "admin-token"
MIN_TOKEN_CHARS = 16
MAX_TRACKED_CLIENTS = 10_000  # failure records kept; the oldest client is forgotten first

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def load_token(configured: str | None, data_dir: Path) -> str:
    """The configured token, else the env var, else one generated once and kept in data_dir.

    The token itself is never logged; every start logs where it comes from. The README and the
    admin page's sign-in say the same: the flag or env var, else `cat <data-dir>/admin-token`.
    """
    token = configured or os.environ.get(ENV_VAR)
    source = f"--admin-token / {ENV_VAR}"
    if token:
        token = checked(token, source)  # a refusal is the one line a bad start prints
        log.info("admin token: from %s", source)
        return token
    path = Path(data_dir) / TOKEN_FILE
    stored = path.read_text(encoding="utf-8").strip() if path.is_file() else ""
    if stored:
        stored = checked(stored, str(path))
        log.info("admin token: in %s (`cat %s` shows it; sign in to /admin with it)", path, path)
        return stored
    token = _generate(path)
    log.warning(
        "admin token: generated into %s (`cat %s` shows it; sign in to /admin with it, "
        "or choose one with %s)",
        *(path, path, source),
    )
    return token


def _generate(path: Path) -> str:
    """A new random token, written to `path` readable by this user only."""
    token = secrets.token_urlsafe(24)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(token + "\n")
    os.chmod(path, 0o600)  # in case the file existed (empty) with wider permissions
    return token


def checked(token: str, source: str, what: str = "the admin token") -> str:
    """The token, or ConfigError if it is too short to resist guessing."""
    if len(token) < MIN_TOKEN_CHARS:
        raise ConfigError(f"{what} ({source}) needs at least {MIN_TOKEN_CHARS} characters")
    return token


def token_matches(header: str | None, token: str) -> bool:
    """Whether an Authorization header carries `Bearer <token>` (constant-time compare)."""
    if not header:
        return False
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode("utf-8"), token.encode("utf-8"))


class FailureThrottle:
    """Wrong tokens per client address in a sliding window; over the limit, 429 until it ages."""

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def check(self, client: str) -> None:
        """Raise TooManyRequests while the client is over the limit."""
        failures = self._recent(client, time.monotonic())
        if len(failures) >= self.limit:
            retry = failures[0] + self.window_s - time.monotonic()
            raise TooManyRequests("too many wrong tokens; wait and retry", retry)

    def failed(self, client: str) -> None:
        """Record one wrong token."""
        now = time.monotonic()
        self._recent(client, now).append(now)
        self._failures.move_to_end(client)
        while len(self._failures) > MAX_TRACKED_CLIENTS:
            self._failures.popitem(last=False)

    def _recent(self, client: str, now: float) -> deque[float]:
        failures = self._failures.setdefault(client, deque())
        while failures and failures[0] <= now - self.window_s:
            failures.popleft()
        return failures


class TokenGuard:
    """Wraps handlers so they answer 401 without one of its tokens, 429 after repeated misses."""

    def __init__(
        self,
        tokens: tuple[str, ...],
        throttle: FailureThrottle,
        trusted_proxies: tuple[str, ...] = (),
        what: str = "admin token",
    ) -> None:
        if not tokens:
            raise ValueError("a guard needs at least one token")
        self.tokens = tokens
        self.throttle = throttle  # shared by every guard: a miss is a miss, whichever token
        self.trusted_proxies = trusted_proxies  # who may name its client (X-Forwarded-For)
        self.what = what  # named in the 401 answer

    def __call__(self, handler: Handler) -> Handler:
        """The guarded handler."""

        async def guarded(request: web.Request) -> web.StreamResponse:
            self.authorize(request)
            return await handler(request)

        return guarded

    def authorize(self, request: web.Request) -> None:
        """Raise Unauthorized / TooManyRequests unless the request carries a token."""
        client = client_address(request, self.trusted_proxies)
        self.throttle.check(client)
        header = request.headers.get("Authorization")
        if not any(token_matches(header, token) for token in self.tokens):
            self.throttle.failed(client)
            raise Unauthorized(
                f"missing or wrong {self.what} (send 'Authorization: Bearer <token>')",
                {"WWW-Authenticate": "Bearer"},
            )


class AdminGuard(TokenGuard):
    """The admin token's guard (jobs, style management)."""

    def __init__(
        self, token: str, throttle: FailureThrottle, trusted_proxies: tuple[str, ...] = ()
    ) -> None:
        super().__init__((token,), throttle, trusted_proxies, "admin token")
