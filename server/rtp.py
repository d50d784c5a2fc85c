"""Complete video frames on the RTP marker bit instead of on the next frame's first packet.

aiortc's JitterBuffer only knows a frame is complete when a packet with a different
timestamp arrives, so every frame waits one frame interval (33 ms at 30 fps) in the
receiver. Senders set the RTP marker bit on the last packet of a video frame (RFC 3550,
RFC 7741 for VP8, RFC 6184 for H.264); when that packet closes a gap-free run of packets
of one timestamp the frame can be handed to the decoder right away.
"""

from __future__ import annotations

import logging

from aiortc import RTCPeerConnection
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.rtp import RtpPacket

log = logging.getLogger(__name__)

# RTCRtpReceiver keeps its buffer in a name-mangled private attribute.
_RECEIVER_ATTR = "_RTCRtpReceiver__jitter_buffer"


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
