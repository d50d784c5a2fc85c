"""A size cap on incoming data-channel messages, enforced while SCTP reassembles them.

aiortc advertises `a=max-message-size:262144` but accepts any size: it buffers every
fragment, rescans the whole buffer per fragment (quadratic CPU) and lets its receive
window go negative, which kills the connection. Here each association advertises the
cap instead, and a message whose fragments pass it is thrown away as they arrive: its
sender gets one call of `on_oversize` and the stream goes on with the next message.
Ordered messages (the `control` channel) are dropped exactly; a peer that piles up more
unfinished data than our receive window allows (unordered fragments, many streams) gets
`on_flood`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from aiortc import RTCSctpTransport
from aiortc.rtcsctptransport import (
    SCTP_DATA_FIRST_FRAG,
    SCTP_DATA_LAST_FRAG,
    SCTP_DATA_UNORDERED,
    WEBRTC_STRING,
    DataChunk,
    InboundStream,
    RTCSctpCapabilities,
)
from aiortc.utils import uint16_add

log = logging.getLogger(__name__)

Message = tuple[int, int, bytes]  # (stream id, payload protocol id, data)
# the aiortc internals this module hooks into (checked, so an aiortc that renamed them warns)
AIORTC_INTERNALS = ("_get_inbound_stream", "_inbound_streams", "_advertised_rwnd")


class MessageCap:
    """The cap shared by every stream of one SCTP association, and its byte count."""

    def __init__(
        self,
        sctp: RTCSctpTransport,
        max_bytes: int,
        on_oversize: Callable[[], None],
        on_flood: Callable[[], None],
    ) -> None:
        self.sctp = sctp
        self.max_bytes = max_bytes
        self.on_oversize = on_oversize
        self.on_flood = on_flood
        self.buffered = 0  # bytes held in reassembly over all streams
        # a sender that respects our receive window never holds more than it unfinished
        self.flood_bytes = sctp._advertised_rwnd + max_bytes
        self.flooded = False

    def take(self, size: int) -> None:
        """Fragments of this size went into a reassembly buffer."""
        self.buffered += size
        if self.buffered > self.flood_bytes and not self.flooded:
            self.flooded = True
            self.on_flood()

    def release(self, size: int) -> None:
        """Fragments of this size left the reassembly buffers."""
        self.buffered -= size

    def refund(self, size: int) -> None:
        """Give discarded bytes back to the receive window (aiortc credits only delivered ones)."""
        self.sctp._advertised_rwnd += size


@dataclass
class Dropped:
    """What has been seen of one ordered message being thrown away."""

    first_tsn: int | None = None
    last_tsn: int | None = None
    fragments: int = 0

    def see(self, chunk: DataChunk) -> None:
        """Count one fragment of the message."""
        self.fragments += 1
        if chunk.flags & SCTP_DATA_FIRST_FRAG:
            self.first_tsn = chunk.tsn
        if chunk.flags & SCTP_DATA_LAST_FRAG:
            self.last_tsn = chunk.tsn

    def complete(self) -> bool:
        """Whether every fragment has arrived (the TSNs of a message are consecutive)."""
        if self.first_tsn is None or self.last_tsn is None:
            return False
        return self.fragments == (self.last_tsn - self.first_tsn) % 2**32 + 1


def ordered_seq(chunk: DataChunk) -> int | None:
    """The stream sequence number of an ordered fragment; None for unordered ones."""
    return None if chunk.flags & SCTP_DATA_UNORDERED else chunk.stream_seq


class CappedInboundStream(InboundStream):
    """aiortc's reassembly buffer for one stream, refusing messages over the cap."""

    def __init__(self, cap: MessageCap) -> None:
        super().__init__()
        self.cap = cap
        self.dropping: dict[int, Dropped] = {}  # stream seq -> fragments seen so far
        self.skipped: set[int] = set()  # dropped whole, not yet stepped over in order

    def add_chunk(self, chunk: DataChunk) -> None:
        """Buffer a fragment, unless its message is over the cap."""
        seq = ordered_seq(chunk)
        if seq is not None and seq in self.dropping:
            self.cap.refund(len(chunk.user_data))
            self._count_dropped(seq, [chunk])
            return
        super().add_chunk(chunk)
        if seq is not None and self._message_bytes(seq) > self.cap.max_bytes:
            self._drop(seq, chunk)
        else:
            self.cap.take(len(chunk.user_data))

    def pop_messages(self) -> Iterator[Message]:
        """aiortc's complete messages, stepping over dropped ones; text is made valid UTF-8."""
        while True:
            for stream_id, protocol, data in super().pop_messages():
                self.cap.release(len(data))
                if protocol == WEBRTC_STRING:  # aiortc's decode would raise on bad UTF-8
                    data = data.decode("utf-8", "replace").encode("utf-8")
                yield stream_id, protocol, data
            if self.sequence_number not in self.skipped:
                return
            self.skipped.discard(self.sequence_number)
            self.sequence_number = uint16_add(self.sequence_number, 1)

    def prune_chunks(self, tsn: int) -> int:
        """aiortc's FORWARD-TSN pruning, keeping the byte count right."""
        size = super().prune_chunks(tsn)
        self.cap.release(size)
        return size

    def _message_bytes(self, seq: int) -> int:
        return sum(len(c.user_data) for c in self.reassembly if ordered_seq(c) == seq)

    def _drop(self, seq: int, newest: DataChunk) -> None:
        """Throw away the buffered fragments of message `seq`, and the rest as they come."""
        mine = [c for c in self.reassembly if ordered_seq(c) == seq]
        self.reassembly = [c for c in self.reassembly if ordered_seq(c) != seq]
        size = sum(len(c.user_data) for c in mine)
        self.cap.release(size - len(newest.user_data))  # the newest was never counted in
        self.cap.refund(size)
        self.dropping[seq] = Dropped()
        self._count_dropped(seq, mine)
        self.cap.on_oversize()

    def _count_dropped(self, seq: int, chunks: list[DataChunk]) -> None:
        dropped = self.dropping[seq]
        for chunk in chunks:
            dropped.see(chunk)
        if dropped.complete():
            del self.dropping[seq]
            self.skipped.add(seq)


def cap_messages(
    sctp: RTCSctpTransport,
    max_bytes: int,
    on_oversize: Callable[[], None],
    on_flood: Callable[[], None],
) -> None:
    """Advertise and enforce `max_bytes` on one SCTP transport (call before createAnswer)."""
    if not all(hasattr(sctp, name) for name in AIORTC_INTERNALS):
        log.warning("this aiortc has no %s: data-channel messages are not capped", AIORTC_INTERNALS)
        return
    cap = MessageCap(sctp, max_bytes, on_oversize, on_flood)

    def capabilities() -> RTCSctpCapabilities:
        return RTCSctpCapabilities(maxMessageSize=max_bytes)

    def inbound_stream(stream_id: int) -> InboundStream:
        streams = sctp._inbound_streams
        if stream_id not in streams:
            streams[stream_id] = CappedInboundStream(cap)
        return streams[stream_id]

    # per instance, so aiortc peers elsewhere in the process keep their defaults
    sctp.getCapabilities = capabilities  # type: ignore[method-assign]
    sctp._get_inbound_stream = inbound_stream  # type: ignore[method-assign]
