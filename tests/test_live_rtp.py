"""The marker-bit jitter buffer: frames leave when their last packet is in, not one frame later."""

from __future__ import annotations

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtp import RtpPacket
from webrtc_helpers import PatternTrack

from server.live.rtp import (
    LatestFrameQueue,
    MarkerJitterBuffer,
    install_latest_frame_queues,
    install_marker_jitter_buffers,
    is_keyframe,
)


def packet(seq: int, timestamp: int, marker: bool = False) -> RtpPacket:
    """A depayloaded video packet whose data names it."""
    p = RtpPacket(payload_type=96, marker=int(marker), sequence_number=seq, timestamp=timestamp)
    p._data = f"[{seq}]".encode()  # type: ignore[attr-defined]
    return p


def feed(buffer: JitterBuffer, packets: list[RtpPacket]) -> list[bytes | None]:
    """What the buffer releases after each packet."""
    released = []
    for p in packets:
        _, frame = buffer.add(p)
        released.append(None if frame is None else frame.data)
    return released


FRAME_1 = [packet(100, 3000), packet(101, 3000), packet(102, 3000, marker=True)]
FRAME_2_START = [packet(103, 6000)]


def test_stock_buffer_holds_a_frame_until_the_next_one_starts():
    released = feed(JitterBuffer(capacity=128, is_video=True), FRAME_1 + FRAME_2_START)
    assert released == [None, None, None, b"[100][101][102]"]


def test_marker_buffer_releases_the_frame_on_its_marker_packet():
    released = feed(MarkerJitterBuffer(capacity=128, is_video=True), FRAME_1 + FRAME_2_START)
    assert released == [None, None, b"[100][101][102]", None]


def test_marker_buffer_waits_for_a_missing_packet():
    buffer = MarkerJitterBuffer(capacity=128, is_video=True)
    arrival = [FRAME_1[0], FRAME_1[2], FRAME_1[1]]  # 101 arrives late (a retransmission)
    assert feed(buffer, arrival) == [None, None, b"[100][101][102]"]


def test_marker_buffer_keeps_stock_behaviour_without_marker_bits():
    frame = [packet(7, 90), packet(8, 90)]
    released = feed(MarkerJitterBuffer(capacity=128, is_video=True), frame + [packet(9, 180)])
    assert released == [None, None, b"[7][8]"]


def test_consecutive_frames_each_leave_on_their_marker():
    buffer = MarkerJitterBuffer(capacity=128, is_video=True)
    frames = [packet(s, 3000 * (s // 2), marker=s % 2 == 1) for s in range(10, 16)]
    assert feed(buffer, frames) == [None, b"[10][11]", None, b"[12][13]", None, b"[14][15]"]


async def test_install_swaps_the_buffer_of_video_receivers_only():
    sender = RTCPeerConnection()
    receiver = RTCPeerConnection()
    try:
        sender.addTrack(PatternTrack())
        sender.addTransceiver("audio")
        await sender.setLocalDescription(await sender.createOffer())
        offer = sender.localDescription
        await receiver.setRemoteDescription(RTCSessionDescription(offer.sdp, offer.type))
        assert install_marker_jitter_buffers(receiver) == 1
        assert install_marker_jitter_buffers(receiver) == 0  # already installed
        kinds = {
            t.kind: type(t.receiver._RTCRtpReceiver__jitter_buffer)
            for t in receiver.getTransceivers()
        }
        assert kinds == {"video": MarkerJitterBuffer, "audio": JitterBuffer}
    finally:
        await sender.close()
        await receiver.close()


class Codec:
    name = "video/VP8"


def vp8(key: bool, tag: int) -> tuple[Codec, JitterFrame]:
    """A depayloaded VP8 frame: the P bit of its first byte says key (0) or delta (1)."""
    return Codec(), JitterFrame(data=bytes([0 if key else 1, tag]), timestamp=tag)


def test_decoder_queue_keeps_one_waiting_frame_and_asks_for_a_keyframe():
    asked: list[bool] = []
    q = LatestFrameQueue(lambda: asked.append(True), lambda: None)
    q.put(vp8(True, 1))
    q.put(vp8(False, 2))  # the decoder is behind: frame 1 is dropped, a keyframe asked for
    q.put(vp8(False, 3))  # deltas cannot be decoded without what was dropped
    assert q.qsize() == 0 and asked == [True] and q.dropped == 3
    q.put(vp8(True, 4))
    q.put(None)  # stopping always gets through
    assert q.get()[1].timestamp == 4 and q.get() is None


def test_a_decoder_that_keeps_up_loses_nothing():
    q = LatestFrameQueue(lambda: None, lambda: None)
    for tag in range(5):
        q.put(vp8(tag == 0, tag))
        assert q.get()[1].timestamp == tag
    assert q.dropped == 0


def test_keyframes_are_recognised_for_vp8_and_h264():
    assert is_keyframe("VP8", b"\x10\x02") and not is_keyframe("VP8", b"\x11\x02")
    idr = b"\0\0\0\1\x67sps\0\0\1\x68pps\0\0\1\x65slice"
    assert is_keyframe("H264", idr) and not is_keyframe("H264", b"\0\0\0\1\x41slice")


async def test_offer_answer_swaps_in_the_bounded_decoder_queue():
    sender, receiver = RTCPeerConnection(), RTCPeerConnection()
    sender.addTrack(PatternTrack())
    await sender.setLocalDescription(await sender.createOffer())
    await receiver.setRemoteDescription(sender.localDescription)
    assert install_latest_frame_queues(receiver, lambda: None) == 1
    await sender.close()
    await receiver.close()
