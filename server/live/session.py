"""One WebRTC connection the server holds (a viewer, a publisher, a watcher) and the limits
every kind obeys alike: pending offers per client address, and reaping half-open sessions."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any, ClassVar

from aiortc import RTCPeerConnection

from ..config import ServerConfig
from ..errors import TooManyRequests

log = logging.getLogger(__name__)

Hook = Callable[[], Awaitable[None]]


class Session:
    """A peer connection with its client address, its tasks and what to do when it closes."""

    prefix: ClassVar[str] = "session"
    _ids: ClassVar[itertools.count[int]] = itertools.count(1)

    def __init__(self, pc: RTCPeerConnection) -> None:
        self.id = f"{self.prefix}-{next(type(self)._ids)}"
        self.pc = pc
        self.remote: str | None = None  # client address (pending offers are capped per address)
        self.tasks: set[asyncio.Task[Any]] = set()
        self.closed = False
        self._on_close: list[Hook] = []

    def spawn(self, coro: Coroutine[Any, Any, Any], what: str) -> asyncio.Task[Any]:
        """Run a coroutine as a task owned by this session (cancelled when it closes)."""
        task = asyncio.get_running_loop().create_task(coro, name=f"{self.id}-{what}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    def on_close(self, hook: Hook) -> None:
        """Await `hook` once this session has closed (a stream ends with its publisher)."""
        self._on_close.append(hook)

    @property
    def connected(self) -> bool:
        """Whether ICE and DTLS are up."""
        return self.pc.connectionState == "connected"

    async def close(self) -> None:
        """Cancel this session's tasks, close its connection, then run the close hooks."""
        self.closed = True
        tasks = [t for t in self.tasks if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        try:
            await self.pc.close()
        except Exception:  # noqa: BLE001 - aiortc can trip over a half-negotiated connection
            log.debug("%s: closing the connection failed", self.id, exc_info=True)
        hooks, self._on_close = self._on_close, []
        for hook in hooks:
            await hook()


def check_pending(sessions: Iterable[Session], remote: str, config: ServerConfig) -> None:
    """Refuse a client that already has max_pending_per_client sessions not yet connected."""
    pending = sum(1 for s in sessions if s.remote == remote and not s.connected)
    if pending >= config.max_pending_per_client:
        raise TooManyRequests(
            f"{pending} offers from {remote} are still connecting", config.connect_timeout_s
        )


async def drop_if_never_connected(session: Session, remove: Hook, timeout_s: float) -> None:
    """Call `remove` if the session is not connected after timeout_s (a half-open offer)."""
    await asyncio.sleep(timeout_s)
    if not session.connected:
        log.info("%s never connected; dropping it", session.id)
        # removing cancels this very task; shield the removal from our own cancel
        await asyncio.shield(remove())
