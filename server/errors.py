"""Server-side exceptions; middleware turns them (and the library's) into JSON errors."""

from __future__ import annotations

from stylefusion.errors import StyleFusionError


class ServerError(StyleFusionError):
    """Base class of the errors the server raises on purpose."""

    status = 500


class BadRequest(ServerError):
    """The request body is malformed (bad JSON, bad SDP, wrong field types)."""

    status = 400


class AtCapacity(ServerError):
    """The server cannot take another peer right now (--max-peers reached, no styles loaded)."""

    status = 503


class FrameDropped(ServerError):
    """A newer frame of the same peer replaced this one before the model got to it."""


class NotFound(ServerError):
    """The request names something that does not exist (a style, a file)."""

    status = 404


class Conflict(ServerError):
    """The request clashes with the current state (e.g. deleting the last style)."""

    status = 409
