"""Clip stylization: PyAV decode, batches through a Stylizer, H.264 MP4 out with the sound kept."""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.audio.stream import AudioStream
from av.container import InputContainer, OutputContainer
from av.video.stream import VideoStream

from .errors import InvalidInput, MediaError
from .fsutil import atomic_write
from .media_probe import (
    MediaTooLarge,
    VideoInfo,
    check_limits,
    ffmpeg_reason,
    frame_rate,
    open_input,
    probe_video,
    quarter_turns,
    video_stream,
)
from .progress import CancelFlag, Progress, ProgressCallback, RateMeter, check_cancel
from .stylizer import Stylizer

__all__ = [
    "MediaTooLarge",
    "VideoConfig",
    "VideoInfo",
    "VideoResult",
    "check_limits",
    "even_size",
    "probe_video",
    "stylize_video",
]

log = logging.getLogger(__name__)

# audio codecs the MP4 muxer takes as they are; anything else is re-encoded to AAC
COPY_AUDIO_CODECS = frozenset({"aac", "mp3", "alac", "ac3", "eac3", "opus", "flac"})
AAC_BIT_RATE = 160_000


@dataclass(frozen=True)
class VideoConfig:
    """How to stylize a clip: which style, where to run, size, batching, strength, limits."""

    style: Path  # a style folder
    variant: str | None = None  # default: full on CUDA, lite on CPU
    device: str = "auto"
    max_side: int | None = None  # scale down so the longest side is at most this
    batch_size: int = 4
    strength: float = 1.0
    max_duration_s: float | None = None
    max_pixels: int | None = None
    crf: int = 20
    preset: str = "veryfast"

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise InvalidInput(f"batch size must be at least 1, got {self.batch_size}")
        if not 0.0 <= self.strength <= 1.0:
            raise InvalidInput(f"strength must be within 0..1, got {self.strength}")
        if self.max_side is not None and self.max_side < 16:
            raise InvalidInput(f"max side must be at least 16 pixels, got {self.max_side}")
        if not 0 <= self.crf <= 51:
            raise InvalidInput(f"crf must be within 0..51, got {self.crf}")


@dataclass(frozen=True)
class VideoResult:
    """A finished clip: where it is, frames written, seconds taken, whether it has sound."""

    output: Path
    frames: int
    seconds: float
    has_audio: bool
    skipped_packets: int = 0


def even_size(width: int, height: int, max_side: int | None = None) -> tuple[int, int]:
    """Output frame size: scaled so the longest side <= max_side, aspect kept, both even."""
    scale = 1.0
    if max_side is not None and max(width, height) > max_side:
        scale = max_side / max(width, height)
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


def stylize_video(
    input: Path,
    output: Path,
    config: VideoConfig,
    progress: ProgressCallback | None = None,
    cancel: CancelFlag | None = None,
    stylizer: Stylizer | None = None,
) -> VideoResult:
    """Stylize every frame of `input` into an H.264 MP4 at `output` (written atomically)."""
    started = time.perf_counter()
    info = probe_video(input, config.max_duration_s, config.max_pixels)
    if Path(output).resolve() == Path(input).resolve():
        raise InvalidInput("the output file must not be the input file")
    if stylizer is None:
        stylizer = Stylizer.from_style(config.style, config.variant, config.device)
    results: list[VideoResult] = []

    def write(tmp: Path) -> None:
        with open_input(input, config.max_pixels) as source, _open_output(tmp) as sink:
            results.append(_Transcoder(source, sink, info, config, stylizer).run(progress, cancel))

    atomic_write(Path(output), write)
    elapsed = time.perf_counter() - started
    result = dataclasses.replace(results[0], output=Path(output), seconds=elapsed)
    log.info("wrote %s: %d frames in %.1f s", output, result.frames, result.seconds)
    return result


def _open_output(path: Path) -> OutputContainer:
    """An MP4 writer whose index sits at the front, so browsers can play it while loading."""
    return av.open(str(Path(path).resolve()), "w", format="mp4", options={"movflags": "+faststart"})


class _Timestamps:
    """Per-frame timestamps like FFmpeg's best_effort_timestamp, forced strictly increasing."""

    def __init__(
        self, offset: int, source_tb: Fraction | None, output_tb: Fraction, rate: Fraction
    ) -> None:
        self.offset = offset  # the container's start time, in source ticks
        self.scale = Fraction(source_tb or output_tb) / output_tb  # source ticks -> output ticks
        self.step = max(1, round(1 / (rate * output_tb)))  # one frame, for frames without times
        self.faulty_pts = self.faulty_dts = 0
        self.last_pts: int | None = None
        self.last_dts: int | None = None
        self.last_out: int | None = None

    def __call__(self, pts: int | None, dts: int | None) -> int:
        """Output ticks for a decoded frame with these pts/dts (source ticks)."""
        if dts is not None:
            self.faulty_dts += self.last_dts is not None and dts <= self.last_dts
            self.last_dts = dts
        if pts is not None:
            self.faulty_pts += self.last_pts is not None and pts <= self.last_pts
            self.last_pts = pts
        use_pts = pts is not None and (dts is None or self.faulty_pts <= self.faulty_dts)
        chosen = pts if use_pts else dts
        if chosen is None:  # raw streams (.h264) carry no times: one frame after the last
            ts = 0 if self.last_out is None else self.last_out + self.step
        else:
            ts = round((chosen - self.offset) * self.scale)
        if self.last_out is not None and ts <= self.last_out:
            ts = self.last_out + 1  # the muxer needs strictly increasing times
        self.last_out = ts
        return ts


class _AudioPath:
    """Sound to the output: packets copied when MP4 takes the codec, else re-encoded to AAC."""

    def __init__(self, source: AudioStream, sink: OutputContainer, offset_us: int) -> None:
        self.source = source
        self.sink = sink
        self.copy = source.codec_context.codec.canonical_name in COPY_AUDIO_CODECS
        self.offset = _ticks(offset_us, source.time_base)
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
                "skipping a damaged audio packet at %s: %s", _when(packet), ffmpeg_reason(exc)
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


class _Transcoder:
    """One pass over a clip: video through the stylizer in batches, sound alongside."""

    def __init__(
        self,
        source: InputContainer,
        sink: OutputContainer,
        info: VideoInfo,
        config: VideoConfig,
        stylizer: Stylizer,
    ) -> None:
        self.source, self.sink, self.config, self.stylizer = source, sink, config, stylizer
        self.vin = video_stream(source)
        self.vin.codec_context.thread_type = "AUTO"
        self.width, self.height = even_size(info.width, info.height, config.max_side)
        self.vout = self._add_video_stream()
        offset_us = source.start_time or 0
        self.timestamps = _Timestamps(
            _ticks(offset_us, self.vin.time_base),
            self.vin.time_base,
            self._time_base(),
            frame_rate(self.vin),
        )
        self.bytes = _file_size(source)  # progress by bytes read when the frame count is unknown
        self.pos = 0  # furthest byte position read so far
        audio = source.streams.audio
        self.audio = _AudioPath(audio[0], sink, offset_us) if audio else None
        self.total = info.frames
        self.batch: list[np.ndarray] = []  # (H, W, 3) uint8 RGB each
        self.batch_pts: list[int] = []
        self.frames = self.skipped = 0

    def _add_video_stream(self) -> VideoStream:
        """H.264 yuv420p at a time base fine enough to carry every input frame time over."""
        stream = self.sink.add_stream("libx264", rate=frame_rate(self.vin))
        codec = stream.codec_context
        codec.width, codec.height = self.width, self.height
        codec.pix_fmt = "yuv420p"
        codec.time_base = stream.time_base = self._time_base()
        codec.options = {"crf": str(self.config.crf), "preset": self.config.preset}
        if self.vin.sample_aspect_ratio:
            codec.sample_aspect_ratio = self.vin.sample_aspect_ratio
        return stream

    def _time_base(self) -> Fraction:
        """Output ticks: the input's if fine enough (1/N, N >= 1000), else 1/90000.

        Coarse bases such as 1/25 leave no room to nudge a frame whose guessed time collides
        with the previous one; a fine base moves it by microseconds instead of a whole frame.
        """
        tb = self.vin.time_base
        if tb and tb.numerator == 1 and tb.denominator >= 1000:
            return Fraction(tb)
        return Fraction(1, 90_000)

    def run(self, progress: ProgressCallback | None, cancel: CancelFlag | None) -> VideoResult:
        """Decode, stylize and encode everything; the result's output and seconds are left 0."""
        meter = RateMeter(self.total or self.bytes)
        streams = [self.vin] + ([self.audio.source] if self.audio else [])
        try:
            for packet in self.source.demux(*streams):
                self._route(packet)
                if len(self.batch) >= self.config.batch_size:
                    check_cancel(cancel)
                    self._flush_batch()
                    self._report(progress, meter, packet.pos)
        except av.FFmpegError as exc:  # a broken container: keep what was read so far
            log.warning("input ends early (%s); keeping %d frames", ffmpeg_reason(exc), self.frames)
        check_cancel(cancel)
        self._finish()
        if progress is not None:
            progress(Progress(done=self.frames, total=self.frames, eta_s=0.0))
        skipped = self.skipped + (self.audio.skipped if self.audio else 0)
        return VideoResult(Path(), self.frames, 0.0, self.audio is not None, skipped)

    def _route(self, packet: av.Packet) -> None:
        """Send a packet to the video decoder or the audio path."""
        if self.audio is not None and packet.stream.index == self.audio.source.index:
            self.audio.push(packet)
            return
        try:
            frames = packet.decode()
        except av.FFmpegError as exc:
            self._check_declared()  # a picture over max_pixels fails to decode: say why
            self.skipped += 1
            log.warning(
                "skipping a damaged video packet at %s: %s", _when(packet), ffmpeg_reason(exc)
            )
            return
        for frame in frames:
            self._check_frame(frame)
            self.batch_pts.append(self.timestamps(frame.pts, frame.dts))
            self._check_duration()
            self.batch.append(self._upright_rgb(frame))

    def _check_frame(self, frame: av.VideoFrame) -> None:
        """MediaTooLarge for a frame over the pixel limit (sizes may change mid-clip)."""
        limit = self.config.max_pixels
        if limit is not None and frame.width * frame.height > limit:
            raise MediaTooLarge(
                f"frame {self.frames + len(self.batch) + 1} is {frame.width}x{frame.height}; "
                f"the limit is {limit} pixels per frame"
            )

    def _check_declared(self) -> None:
        """MediaTooLarge if the decoder's current headers declare frames over the limit."""
        codec, limit = self.vin.codec_context, self.config.max_pixels
        if limit is not None and (codec.width or 0) * (codec.height or 0) > limit:
            raise MediaTooLarge(
                f"the clip switches to {codec.width}x{codec.height} frames after "
                f"{self.frames + len(self.batch)} frames; the limit is {limit} pixels per frame"
            )

    def _check_duration(self) -> None:
        """MediaTooLarge once the clip runs past max_duration_s (its length may be unknown)."""
        limit = self.config.max_duration_s
        last = self.timestamps.last_out or 0
        if limit is not None and last * self.vout.codec_context.time_base > limit:
            raise MediaTooLarge(
                f"the clip runs longer than the limit of {limit:g} s; "
                f"stopped after {self.frames + len(self.batch)} frames"
            )

    def _report(self, progress: ProgressCallback | None, meter: RateMeter, pos: int | None) -> None:
        """Frames done of the known total; of an unknown one, bytes read of the file's size."""
        if pos is not None and pos >= 0:  # the packets that flush the decoders have no position
            self.pos = max(self.pos, pos)
        if progress is None:
            return
        if self.total:
            done, total = self.frames, max(self.total, self.frames + 1)  # done only at the end
        elif self.bytes:
            done, total = min(self.pos, self.bytes - 1), self.bytes
        else:
            done, total = 0, 0  # nothing honest to say: fraction 0, no ETA
        meter.total = total
        rate, eta = meter.report(done) if total else (None, None)
        fps = rate if self.total else None  # a rate of bytes is no frame rate
        progress(Progress(done=done, total=total, eta_s=eta, rate=fps))

    def _upright_rgb(self, frame: av.VideoFrame) -> np.ndarray:
        """(H, W, 3) uint8 RGB at the output size, turned as its display rotation asks."""
        turns = quarter_turns(frame)
        width, height = (self.height, self.width) if turns % 2 else (self.width, self.height)
        rgb = frame.to_ndarray(width=width, height=height, format="rgb24", interpolation="AREA")
        return np.ascontiguousarray(np.rot90(rgb, turns)) if turns else rgb

    def _flush_batch(self) -> None:
        """Stylize the pending frames and encode them with their own timestamps."""
        if not self.batch:
            return
        styled = self.stylizer(np.stack(self.batch), strength=self.config.strength)
        time_base = self.vout.codec_context.time_base
        for rgb, pts in zip(styled, self.batch_pts, strict=True):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
            frame.pts, frame.time_base = pts, time_base
            self.sink.mux(self.vout.encode(frame))
        self.frames += len(self.batch)
        self.batch.clear()
        self.batch_pts.clear()

    def _finish(self) -> None:
        """Last batch, then drain the encoders; MediaError if no frame decoded at all."""
        self._flush_batch()
        if self.frames == 0:
            raise MediaError("the clip has no decodable video frames")
        self.sink.mux(self.vout.encode(None))
        if self.audio is not None:
            self.audio.finish()


def _when(packet: av.Packet) -> str:
    """A packet's time for log lines, e.g. '1.23 s'."""
    if packet.pts is None or packet.time_base is None:
        return "an unknown time"
    return f"{float(packet.pts * packet.time_base):.2f} s"


def _ticks(microseconds: int, time_base: Fraction | None) -> int:
    """A time in FFmpeg's microsecond base as ticks of `time_base`."""
    if not microseconds or not time_base:
        return 0
    return round(Fraction(microseconds, av.time_base) / time_base)


def _file_size(container: InputContainer) -> int:
    """The input file's size in bytes (0 if unknown)."""
    try:
        return Path(container.name).stat().st_size
    except (OSError, TypeError):
        return 0
