"""aiohttp's access log, with the routine polls of the pages and of health checks at DEBUG.

The admin page asks for the job list every second while a job runs (and the styles every few
seconds), balancers ask for /healthz, Prometheus for /metrics: at INFO that is a line a second
in the terminal, burying the lines that matter. Those polls, when they succeed, log at DEBUG
(`--log-level debug` shows them); every other request, and any poll that fails, stays at INFO.
"""

from __future__ import annotations

import logging
import re
from collections.abc import MutableMapping
from typing import Any

from aiohttp.abc import AbstractAccessLogger, BaseRequest, StreamResponse
from aiohttp.web_log import AccessLogger

ROUTINE_POLL = re.compile(
    r"/healthz|/metrics|/api/streams|/api/styles|/api/jobs(/[^/]+(/preview)?)?"
)


def is_routine_poll(request: BaseRequest, response: StreamResponse) -> bool:
    """A GET the pages or health checks repeat on a timer, answered without error."""
    return (
        request.method in ("GET", "HEAD")
        and response.status < 400
        and ROUTINE_POLL.fullmatch(request.path) is not None
    )


class _AtDebug(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A logger whose info() writes DEBUG records, extras kept (aiohttp logs with info())."""

    def info(self, msg: object, *args: Any, **kwargs: Any) -> None:
        self.debug(msg, *args, **kwargs)

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        return msg, kwargs  # the default would replace the record's extras with the adapter's


class PollsAtDebug(AbstractAccessLogger):
    """aiohttp's AccessLogger line for every request: INFO, routine polls DEBUG."""

    def __init__(self, logger: logging.Logger, log_format: str = AccessLogger.LOG_FORMAT) -> None:
        super().__init__(logger, log_format)
        self._info = AccessLogger(logger, log_format)
        self._debug = AccessLogger(_AtDebug(logger, {}), log_format)  # type: ignore[arg-type]

    @property
    def enabled(self) -> bool:
        """Whether any line would show (aiohttp skips the call otherwise)."""
        return self.logger.isEnabledFor(logging.INFO)

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        """Write the request's line at its level."""
        if not is_routine_poll(request, response):
            self._info.log(request, response, time)
        elif self.logger.isEnabledFor(logging.DEBUG):
            self._debug.log(request, response, time)
