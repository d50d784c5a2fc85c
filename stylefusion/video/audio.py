"""A clip's sound into the MP4: packets copied where MP4 takes the codec, else AAC."""

from __future__ import annotations

import logging

import av
from av.audio.stream import AudioStream
from av.container import OutputContainer

from ..media_probe import ffmpeg_reason
from .timestamps import ticks, when

log = logging.getLogger(__name__)

# audio codecs copied as they are: those both Chromium and Firefox play inside an MP4 (checked
# with Debian's Chromium and Firefox ESR 153). The MP4 muxer also takes AC-3, E-AC-3 and ALAC,
# but those browsers play such a clip without sound, so they are re-encoded to AAC like the rest.
COPY_AUDIO_CODECS = frozenset({"aac", "mp3", "opus", "flac"})
AAC_BIT_RATE = 160_000


class AudioPath:
    """Sound to the output: packets copied when MP4 takes the codec, else re-encoded to AAC."""

    def __init__(self, source: AudioStream, sink: OutputContainer, offset_us: int) -> None:
        self.source = source
        self.sink = sink
        self.copy = source.codec_context.codec.canonical_name in COPY_AUDIO_CODECS
        self.offset = ticks(offset_us, source.time_base)
        self.skipped = 0
        if self.copy:
            self.stream = sink.add_stream_from_template(source)
        else:
            channels = source.codec_context.channels
            layout = "mono" if channels == 1 else "stereo"
            rate = source.codec_context.sample_rate or 48000
            self.stream = sink.add_stream("aac", rate=rate, layout=layout)
            self.stream.codec_context.bit_rate = AAC_BIT_RATE
        log.debug("audio %s: %s", source.codec_context.name, "copied" if self.copy else "to AAC")

    def push(self, packet: av.Packet) -> None:
        """Handle one demuxed audio packet (an empty one flushes the decoder)."""
        try:
            frames = packet.decode()  # decoding proves the packet is sound even when copying
        except av.FFmpegError as exc:
            self.skipped += 1
            log.warning(
                "skipping a damaged audio packet at %s: %s", when(packet), ffmpeg_reason(exc)
            )
            return
        if self.copy:
            self._copy(packet)
            return
        for frame in frames:
            if frame.pts is not None:
                frame.pts -= self.offset
            self.sink.mux(self.stream.encode(frame))

    def _copy(self, packet: av.Packet) -> None:
        """Remux one packet with the start offset removed."""
        if packet.size == 0 or packet.dts is None:
            return
        packet.dts -= self.offset
        if packet.pts is not None:
            packet.pts -= self.offset
        packet.stream = self.stream
        self.sink.mux(packet)

    def finish(self) -> None:
        """Drain the AAC encoder."""
        if not self.copy:
            self.sink.mux(self.stream.encode(None))
