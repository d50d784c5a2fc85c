"""The receive path: frames complete on the RTP marker bit; the decoder never builds a backlog.

aiortc's JitterBuffer only knows a frame is complete when a packet with a different
timestamp arrives, so every frame waits one frame interval (33 ms at 30 fps) in the
receiver. Senders set the RTP marker bit on the last packet of a video frame (RFC 3550,
RFC 7741 for VP8, RFC 6184 for H.264); when that packet closes a gap-free run of packets
of one timestamp the frame can be handed to the decoder right away.

aiortc hands complete frames to its decoder thread through an unbounded queue: when the box
is overloaded, decoding falls behind and every frame waits for all the older ones. A
LatestFrameQueue holds at most one waiting frame. A newer frame replaces it, but a dropped
VP8/H.264 frame breaks the chain of references, so frames are then skipped up to the next
keyframe, which is asked for at once with an RTCP PLI.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import queue
from collections.abc import Callable
from typing import Any

from aiortc import RTCPeerConnection
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.rtp import RtpPacket

log = logging.getLogger(__name__)

# RTCRtpReceiver keeps its buffer in a name-mangled private attribute.
_RECEIVER_ATTR = "_RTCRtpReceiver__jitter_buffer"
_DECODER_QUEUE_ATTR = "_RTCRtpReceiver__decoder_queue"
KEYFRAME_REPEAT = 15  # frames skipped while waiting for a keyframe before asking again


class MarkerJitterBuffer(JitterBuffer):
    """A video JitterBuffer that releases a frame as soon as its marker-bit packet is in."""

    def _remove_frame(self, sequence_number: int) -> JitterFrame | None:
        frame = self._marker_frame()
        return frame if frame is not None else super()._remove_frame(sequence_number)

    def _marker_frame(self) -> JitterFrame | None:
        """The oldest frame, if all its packets up to the marker one are here without gaps."""
        assert self._origin is not None
        packets: list[RtpPacket] = []
        for count in range(self.capacity):
            packet = self._packets[(self._origin + count) % self.capacity]
            if packet is None or (packets and packet.timestamp != packets[0].timestamp):
                return None
            packets.append(packet)
            if packet.marker:
                self.remove(count + 1)
                data = b"".join(p._data for p in packets)  # type: ignore[attr-defined]
                return JitterFrame(data=data, timestamp=packets[0].timestamp)
        return None


def install_marker_jitter_buffers(pc: RTCPeerConnection) -> int:
    """Swap a MarkerJitterBuffer into every video receiver of pc; returns how many.

    Call it after setRemoteDescription() and before the answer is sent, so no packet
    has reached the stock buffer yet.
    """
    count = 0
    for transceiver in pc.getTransceivers():
        receiver: RTCRtpReceiver = transceiver.receiver
        old = getattr(receiver, _RECEIVER_ATTR, None)
        if transceiver.kind != "video" or old is None or isinstance(old, MarkerJitterBuffer):
            continue
        setattr(receiver, _RECEIVER_ATTR, MarkerJitterBuffer(capacity=old.capacity, is_video=True))
        count += 1
    return count


def is_keyframe(codec_name: str, data: bytes) -> bool:
    """Whether a depayloaded VP8 or H.264 frame can be decoded on its own."""
    if not data:
        return False
    name = codec_name.lower()
    if name.endswith("vp8"):
        return data[0] & 0x01 == 0  # the frame tag's P bit: 0 means a key frame (RFC 6386)
    if name.endswith("h264"):
        nal_types = {unit[0] & 0x1F for unit in data.split(b"\0\0\1")[1:] if unit}
        return bool(nal_types & {5, 7})  # an IDR slice, or the SPS that precedes one
    return True  # other codecs: never hold frames back


class LatestFrameQueue(queue.Queue):  # type: ignore[type-arg]
    """A decoder input queue that keeps at most one waiting frame, then waits for a keyframe.

    put() runs on the event loop, get() in aiortc's decoder thread; items are
    (codec, JitterFrame), or None to stop the decoder.
    """

    def __init__(self, request_keyframe: Callable[[], None], on_drop: Callable[[], None]) -> None:
        super().__init__()
        self.request_keyframe = request_keyframe
        self.on_drop = on_drop
        self.waiting_for_keyframe = False
        self.dropped = 0

    def _init(self, maxsize: int) -> None:
        self.queue: collections.deque[Any] = collections.deque()

    def _put(self, item: Any) -> None:
        if item is None:  # the stop signal always goes through
            self.queue.append(item)
            return
        codec, frame = item
        if self.queue and self.queue[-1] is not None:
            self.queue.clear()  # the decoder is behind: drop the waiting frame
            self._drop()
            self.waiting_for_keyframe = True
            self.request_keyframe()
        if self.waiting_for_keyframe:
            if not is_keyframe(codec.name, frame.data):
                self._drop()
                if self.dropped % KEYFRAME_REPEAT == 0:  # the PLI or its keyframe was lost
                    self.request_keyframe()
                return
            self.waiting_for_keyframe = False
        self.queue.append(item)

    def _drop(self) -> None:
        self.dropped += 1
        self.on_drop()


def install_latest_frame_queues(pc: RTCPeerConnection, on_drop: Callable[[], None]) -> int:
    """Swap a LatestFrameQueue in as every video receiver's decoder input; returns how many.

    Call it after setRemoteDescription() and before the answer is sent (the decoder thread
    starts once the connection is up, and takes the queue it finds then).
    """
    count = 0
    for transceiver in pc.getTransceivers():
        receiver: RTCRtpReceiver = transceiver.receiver
        if transceiver.kind != "video" or not hasattr(receiver, _DECODER_QUEUE_ATTR):
            continue

        def request_keyframe(receiver: RTCRtpReceiver = receiver) -> None:
            for source in receiver.getSynchronizationSources():
                # aiortc's own PLI sender; the loop is running, since put() is called on it
                asyncio.ensure_future(receiver._send_rtcp_pli(source.source))

        setattr(receiver, _DECODER_QUEUE_ATTR, LatestFrameQueue(request_keyframe, on_drop))
        count += 1
    return count
