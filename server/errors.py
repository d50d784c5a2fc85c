"""Server-side exceptions; middleware turns them (and the library's) into JSON errors."""

from __future__ import annotations

from typing import Any

from stylefusion.errors import StyleFusionError


class ServerError(StyleFusionError):
    """Base class of the errors the server raises on purpose; `status` is the HTTP answer."""

    status = 500
    quiet = False  # a refusal the client is told to retry soon: logged at DEBUG, not WARNING

    def __init__(
        self,
        message: str,
        headers: dict[str, str] | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """details: more JSON fields beside "error" (e.g. the minimum a refused value needs)."""
        super().__init__(message)
        self.headers = headers or {}
        self.details = details or {}


class BadRequest(ServerError):
    """The request body is malformed (bad JSON, bad SDP, wrong field types)."""

    status = 400


class Unauthorized(ServerError):
    """The request lacks the admin token, or carries a wrong one."""

    status = 401


class RequestTimeout(ServerError):
    """The client sent its request body too slowly."""

    status = 408


class MisdirectedRequest(ServerError):
    """The Host header names a host this server does not answer for (DNS rebinding)."""

    status = 421


class TooManyRequests(ServerError):
    """The client is over a rate or concurrency limit; Retry-After says when to come back."""

    status = 429

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message, {"Retry-After": str(max(1, round(retry_after_s)))})


class AtCapacity(ServerError):
    """The server cannot take another peer right now (--max-peers reached, no styles loaded)."""

    status = 503


class WarmingUp(AtCapacity):
    """The server cannot take viewers yet (no style is loaded): come back after Retry-After
    (quiet: the page asks every few seconds)."""

    quiet = True

    def __init__(self, reason: str, retry_after_s: int = 5) -> None:
        super().__init__(
            f"warming up: {reason}; try again in a few seconds",
            headers={"Retry-After": str(retry_after_s)},
        )


class FrameDropped(ServerError):
    """A newer frame of the same peer replaced this one before the model got to it."""


class NotFound(ServerError):
    """The request names something that does not exist (a style, a file)."""

    status = 404


class Conflict(ServerError):
    """The request clashes with the current state (last style, existing style, running job)."""

    status = 409


class PayloadTooLarge(ServerError):
    """A body, file or clip is over a configured limit (bytes, pixels, seconds)."""

    status = 413


class UnsupportedMedia(ServerError):
    """The body or an uploaded file is of a kind the server does not accept or cannot decode."""

    status = 415


class Unprocessable(ServerError):
    """A well-formed request with a missing or invalid field (bad number, unknown style)."""

    status = 422


class InsufficientStorage(ServerError):
    """The data dir's disk is too full to take an upload."""

    status = 507


class ConfigError(ServerError):
    """The server's configuration is unusable (the CLI prints one line and exits 2)."""


class PreconditionFailed(ServerError):
    """An If-Match names an entity-tag the resource no longer has (a stale ICE session)."""

    status = 412


class PreconditionRequired(ServerError):
    """A request that must be conditional (a trickle PATCH) came without If-Match."""

    status = 428
