"""The data-channel message cap inside SCTP reassembly, fed fragments directly (any order)."""

from __future__ import annotations

import random
from types import SimpleNamespace

from aiortc.rtcsctptransport import (
    SCTP_DATA_FIRST_FRAG,
    SCTP_DATA_LAST_FRAG,
    WEBRTC_STRING,
    DataChunk,
)

from server.live.message_cap import CappedInboundStream, MessageCap

CAP = 1000
FRAGMENT = 300


def fragments(tsn: int, seq: int, data: bytes) -> list[DataChunk]:
    """One ordered message cut into SCTP DATA chunks with consecutive TSNs."""
    parts = [data[i : i + FRAGMENT] for i in range(0, len(data), FRAGMENT)]
    chunks = []
    for i, part in enumerate(parts):
        chunk = DataChunk()
        chunk.flags = (SCTP_DATA_FIRST_FRAG if i == 0 else 0) | (
            SCTP_DATA_LAST_FRAG if i == len(parts) - 1 else 0
        )
        chunk.tsn, chunk.stream_id, chunk.stream_seq = tsn + i, 1, seq
        chunk.protocol, chunk.user_data = WEBRTC_STRING, part
        chunks.append(chunk)
    return chunks


def feed(stream: CappedInboundStream, chunks: list[DataChunk]) -> list[bytes]:
    """Add chunks as aiortc does (window debit after add_chunk); the messages delivered."""
    delivered = []
    for chunk in chunks:
        stream.add_chunk(chunk)
        stream.cap.sctp._advertised_rwnd -= len(chunk.user_data)
        for _, _, data in stream.pop_messages():
            stream.cap.sctp._advertised_rwnd += len(data)
            delivered.append(data)
    return delivered


def make_stream() -> tuple[CappedInboundStream, list[str]]:
    events: list[str] = []
    sctp = SimpleNamespace(_advertised_rwnd=2**20)
    cap = MessageCap(sctp, CAP, lambda: events.append("oversize"), lambda: events.append("flood"))
    return CappedInboundStream(cap), events


def test_an_oversized_message_is_dropped_in_any_fragment_order_and_the_stream_goes_on():
    for seed in range(20):
        stream, events = make_stream()
        small, big, after = b"a" * 500, b"b" * 5000, b"c" * 700
        chunks = fragments(10, 0, small) + fragments(12, 1, big) + fragments(29, 2, after)
        middle = chunks[2:-3]
        random.Random(seed).shuffle(middle)  # the network reorders the big message
        delivered = feed(stream, chunks[:2] + middle + chunks[-3:])
        assert delivered == [small, after], seed
        assert events == ["oversize"]
        assert stream.cap.buffered == 0 and not stream.reassembly
        assert stream.cap.sctp._advertised_rwnd == 2**20  # the window is whole again
        assert stream.sequence_number == 3 and not stream.dropping and not stream.skipped


def test_invalid_utf8_text_is_delivered_replaced_not_raised():
    stream, _ = make_stream()
    (delivered,) = feed(stream, fragments(1, 0, b'{"style": "\xff\xfe"}'))
    assert delivered.decode("utf-8") == '{"style": "\ufffd\ufffd"}'
