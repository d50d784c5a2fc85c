"""aiohttp's connection logger, with request-parser errors cut down to one WARNING line.

aiohttp logs a request it cannot parse (BadHttpMessage, LineTooLong, InvalidHeader, ...)
with `logger.exception`: an ERROR with a traceback whose message quotes the offending
bytes, an `Authorization` header or a whole over-long URL included. Anyone can send such
requests, so each becomes one line naming the error class and the client address.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from types import TracebackType
from typing import Any

from aiohttp.http_exceptions import HttpProcessingError

ExcInfo = (
    BaseException
    | tuple[type[BaseException], BaseException, TracebackType | None]
    | tuple[None, None, None]
    | bool
    | None
)


class RequestLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """The logger handed to aiohttp's request handler (Application handler_args)."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        super().__init__(logger or logging.getLogger("aiohttp.server"), {})

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        """Log as aiohttp asked, unless the record is about a request that did not parse."""
        exc = raised(kwargs.get("exc_info"))
        if not isinstance(exc, HttpProcessingError):
            super().log(level, msg, *args, **kwargs)
            return
        # aiohttp's own format string names only the client address; the exception's text
        # (the client's bytes) and the traceback are left out
        level = logging.WARNING if level >= logging.WARNING else level
        detail = f"{msg}: unparsable request ({type(exc).__name__}, answered {exc.code or 400})"
        super().log(level, detail, *args, **only_extra(kwargs))


def raised(exc_info: ExcInfo) -> BaseException | None:
    """The exception an `exc_info` argument names."""
    if isinstance(exc_info, BaseException):
        return exc_info
    if isinstance(exc_info, tuple):
        return exc_info[1]
    return sys.exc_info()[1] if exc_info else None


def only_extra(kwargs: MutableMapping[str, Any]) -> dict[str, Any]:
    """The logging keyword arguments without exc_info and stack_info."""
    return {k: v for k, v in kwargs.items() if k not in ("exc_info", "stack_info")}
