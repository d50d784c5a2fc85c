"""Live peers: each viewer's connection, chosen style and counters, and the set of them."""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import time
from collections.abc import Callable, Container
from dataclasses import dataclass
from typing import Any, ClassVar

from aiortc import RTCPeerConnection

from ..errors import AtCapacity, ServerError, TooManyRequests
from ..metrics import Metrics
from ..services import StyleCatalog
from .batcher import Batcher, Blend, FrameResult
from .budget import BudgetPlanner
from .session import Session

log = logging.getLogger(__name__)

Message = dict[str, Any]
# why the server dropped a peer, and why it refused one (counted in /healthz and /metrics)
DROP_REASONS = ("never_connected", "no_video", "control_flood", "sctp_flood")
REFUSE_REASONS = ("capacity", "pending", "per_client")


@dataclass
class PeerStats:
    """Counters of one peer since the last stats message."""

    frames_in: int = 0
    frames_out: int = 0
    dropped: int = 0
    latency_s: float = 0.0  # summed over frames_out
    queue_s: float = 0.0
    inference_s: float = 0.0
    batch_frames: int = 0  # summed batch sizes of the frames sent
    since: float = 0.0
    size_in: str = ""  # WxH of the newest camera frame

    def message(self, now: float) -> Message:
        """The `{"event": "stats"}` message for the window that ends now."""
        span = max(now - self.since, 1e-6)
        out = max(self.frames_out, 1)
        return {
            "event": "stats",
            "fps_in": round(self.frames_in / span, 1),
            "fps_out": round(self.frames_out / span, 1),
            "dropped": self.dropped,
            "latency_ms": round(1000 * self.latency_s / out, 1),
            "queue_ms": round(1000 * self.queue_s / out, 1),
            "inference_ms": round(1000 * self.inference_s / out, 1),
            "batch": round(self.batch_frames / out, 2),
            "size_in": self.size_in,
        }


class Peer(Session):
    """One live viewer (or a stream's publisher): its chosen style and strength, counters."""

    prefix: ClassVar[str] = "peer"
    _ids: ClassVar[itertools.count[int]] = itertools.count(1)

    def __init__(self, pc: RTCPeerConnection, style: str, registry: StyleCatalog) -> None:
        super().__init__(pc)
        self.style = style
        self.strength = 1.0
        self.blend: Blend | None = None  # a second style mixed in (amount > 0)
        self.registry = registry
        self.pending_ack: str | None = None
        self.pending_blend: Blend | None = None  # acked once frames with it go out
        self.last_video = time.monotonic()  # the newest camera frame (the clock starts at connect)
        self.stats = PeerStats(since=time.perf_counter())
        self.dropped_total = 0
        self.send: Callable[[Message], None] = lambda message: None  # set by the control channel
        self.watched = False  # whether the no-video watchdog runs (from the first connect)
        self.video_timeout_s = 10.0  # dropped after this long without video (open_peer sets it)

    def request_style(self, name: str) -> None:
        """Switch style from the next frame on; acked once a frame in it goes out."""
        self.style = name
        self.pending_ack = name

    def request_blend(self, name: str, amount: float) -> None:
        """Mix style `name` in at `amount` (0 turns it off) from the next frame on; acked once
        a frame with it goes out."""
        self.blend = (name, amount) if amount > 0 else None
        self.pending_blend = (name, amount)

    def frame_in(self, width: int, height: int) -> None:
        """Count a decoded camera frame."""
        self.last_video = time.monotonic()
        self.stats.frames_in += 1
        self.stats.size_in = f"{width}x{height}"

    def frame_dropped(self) -> None:
        """Count a frame skipped because a newer one came in."""
        self.stats.dropped += 1
        self.dropped_total += 1

    def frame_sent(self, result: FrameResult, latency_s: float) -> None:
        """Count a stylized frame leaving; ack a style switch with its first frame."""
        stats = self.stats
        stats.frames_out += 1
        stats.latency_s += latency_s
        stats.queue_s += result.queue_s
        stats.inference_s += result.inference_s
        stats.batch_frames += result.batch_size
        if self.pending_ack == result.style:
            self.pending_ack = None
            self.send({"event": "style", "style": result.style})
        self._ack_blend(result)

    def _ack_blend(self, result: FrameResult) -> None:
        """Ack a blend (or its end) with the first frame painted that way."""
        wanted = self.pending_blend
        if wanted is None or result.blend != (wanted if wanted[1] > 0 else None):
            return
        self.pending_blend = None
        self.send({"event": "blend", "style": wanted[0], "amount": wanted[1]})

    def style_missing(self) -> bool:
        """The peer's style vanished: fall back to the default; False if no style is left."""
        lost, fallback = self.style, self.registry.default
        if fallback is None:
            return False
        self.send({"event": "error", "error": f"style {lost!r} is no longer available"})
        self.request_style(fallback)
        return True

    def take_stats(self) -> Message:
        """The stats message for the last window (then start a new one)."""
        now = time.perf_counter()
        message = self.stats.message(now)
        message.update(style=self.style, strength=self.strength, dropped_total=self.dropped_total)
        if self.blend is not None:
            message.update(blend={"style": self.blend[0], "amount": self.blend[1]})
        self.stats = PeerStats(since=now)
        return message


class PeerSet:
    """The live peers, capped at max_peers; removal frees every resource of a peer."""

    def __init__(
        self, max_peers: int, batcher: Batcher, metrics: Metrics, budget: BudgetPlanner
    ) -> None:
        self.max_peers = max_peers
        self.batcher = batcher
        self.metrics = metrics
        self.budget = budget
        self._peers: dict[str, Peer] = {}
        self.dropped: collections.Counter[str] = collections.Counter()  # reason -> peers
        self.refused: collections.Counter[str] = collections.Counter()  # reason -> offers
        for reason in DROP_REASONS:  # every series exists from the start, at 0
            metrics.peers_dropped.labels(reason=reason)
        for reason in REFUSE_REASONS:
            metrics.peers_refused.labels(reason=reason)

    def __len__(self) -> int:
        return len(self._peers)

    def __iter__(self):  # noqa: ANN204 - an iterator over a snapshot
        return iter(list(self._peers.values()))

    def check_room(self) -> None:
        """Raise AtCapacity when max_peers are live."""
        if len(self._peers) >= self.max_peers:
            full = AtCapacity(f"the server is at capacity ({self.max_peers} live peers)")
            self._refuse("capacity", full)

    def check_client(self, remote: str, max_pending: int, max_peers: int, retry_s: float) -> None:
        """Refuse (429) a client with max_pending offers still connecting, or max_peers peers."""
        mine = [peer for peer in self._peers.values() if peer.remote == remote]
        pending = sum(1 for peer in mine if peer.pc.connectionState != "connected")
        if pending >= max_pending:
            message = f"{pending} offers from {remote} are still connecting"
            self._refuse("pending", TooManyRequests(message, retry_s))
        if len(mine) >= max_peers:
            message = f"{remote} already has {len(mine)} sessions (at most {max_peers} per client)"
            self._refuse("per_client", TooManyRequests(message, retry_s))

    def _refuse(self, reason: str, error: ServerError) -> None:
        """Count a refused offer, then raise its error."""
        self.refused[reason] += 1
        self.metrics.peers_refused.labels(reason=reason).inc()
        raise error

    def add(self, peer: Peer) -> None:
        """Admit a peer, or raise AtCapacity when max_peers are live."""
        self.check_room()
        self._peers[peer.id] = peer
        self.batcher.add_peer(peer.id)
        self.metrics.active_peers.set(len(self._peers))
        log.info("%s joined (%d live)", peer.id, len(self._peers))
        self._replan()

    async def remove(self, peer: Peer) -> None:
        """Drop a peer (idempotent): stop its tasks, close its connection."""
        if self._peers.pop(peer.id, None) is None:
            return
        self.batcher.remove_peer(peer.id)
        self.metrics.active_peers.set(len(self._peers))
        log.info("%s left (%d live)", peer.id, len(self._peers))
        self._replan()
        await peer.close()

    async def drop(self, peer: Peer, reason: str) -> None:
        """Remove a peer the server gives up on (never connected, flooding), counting why."""
        if peer.id not in self._peers:
            return
        self.dropped[reason] += 1
        self.metrics.peers_dropped.labels(reason=reason).inc()
        await self.remove(peer)

    async def close_all(self) -> None:
        """Close every peer (server shutdown)."""
        await asyncio.gather(*(self.remove(peer) for peer in list(self._peers.values())))

    def fall_back(self, available: Container[str], default: str | None) -> None:
        """Move the peers whose style is gone to the default one (acked by a style event)."""
        if default is None:
            return
        for peer in list(self._peers.values()):
            if peer.style not in available:
                log.info("%s: style %s is gone, moving to %s", peer.id, peer.style, default)
                peer.request_style(default)
            if peer.blend is not None and peer.blend[0] not in available:
                peer.send({"event": "error", "error": f"style {peer.blend[0]!r} is gone"})
                peer.request_blend(peer.blend[0], 0.0)

    def _replan(self) -> None:
        """A viewer joined or left: re-plan the send budget and tell every page if it moved."""
        if self.budget.update(len(self._peers)):
            self.broadcast(self.budget.current.message())

    def broadcast(self, message: Message) -> None:
        """Send a message to every peer's control channel."""
        for peer in list(self._peers.values()):
            peer.send(message)
