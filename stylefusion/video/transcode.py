"""The transcode loop: PyAV decode, batches through a Stylizer, H.264 MP4 out, sound alongside."""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.container import InputContainer, OutputContainer
from av.video.stream import VideoStream

from ..errors import InvalidInput, MediaError
from ..fsutil import atomic_write
from ..media_probe import (
    VideoInfo,
    ffmpeg_reason,
    frame_rate,
    open_input,
    probe_video,
    quarter_turns,
    video_stream,
)
from ..progress import CancelFlag, Progress, ProgressCallback, check_cancel
from ..stylizer import Stylizer
from .audio import AudioPath
from .flow_blend import FlowBlender
from .limits import ClipLimits, ClipProgress
from .timestamps import Timestamps, ticks, when

log = logging.getLogger(__name__)


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
    # share of the previous output, carried along the source's optical flow, mixed into each
    # frame where the flow is reliable (stylefusion/video/flow_blend.py); 0 = off
    flow_blend: float = 0.0

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise InvalidInput(f"batch size must be at least 1, got {self.batch_size}")
        if not 0.0 <= self.strength <= 1.0:
            raise InvalidInput(f"strength must be within 0..1, got {self.strength}")
        if self.max_side is not None and self.max_side < 16:
            raise InvalidInput(f"max side must be at least 16 pixels, got {self.max_side}")
        if not 0 <= self.crf <= 51:
            raise InvalidInput(f"crf must be within 0..51, got {self.crf}")
        if not 0.0 <= self.flow_blend < 1.0:
            raise InvalidInput(f"flow blend must be within 0..1, 1 excluded: {self.flow_blend}")


@dataclass(frozen=True)
class VideoResult:
    """A finished clip: where it is, frames written and their size, seconds taken, sound."""

    output: Path
    frames: int
    seconds: float
    has_audio: bool
    skipped_packets: int = 0
    width: int = 0  # of the upright frames written
    height: int = 0


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
        self.timestamps = Timestamps(
            ticks(offset_us, self.vin.time_base),
            self.vin.time_base,
            self._time_base(),
            frame_rate(self.vin),
        )
        self.limits = ClipLimits(config.max_pixels, config.max_duration_s)
        self.progress = ClipProgress(info.frames, source)
        audio = source.streams.audio
        self.audio = AudioPath(audio[0], sink, offset_us) if audio else None
        self.batch: list[np.ndarray] = []  # (H, W, 3) uint8 RGB each
        self.batch_pts: list[int] = []
        self.latest: np.ndarray | None = None  # the newest stylized frame, for previews
        self.blender = FlowBlender(config.flow_blend) if config.flow_blend > 0 else None
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
        streams = [self.vin] + ([self.audio.source] if self.audio else [])
        try:
            for packet in self.source.demux(*streams):
                self._route(packet)
                if len(self.batch) >= self.config.batch_size:
                    check_cancel(cancel)
                    self._flush_batch()
                    self.progress.report(progress, self.frames, packet.pos, self.latest)
        except av.FFmpegError as exc:  # a broken container: keep what was read so far
            log.warning("input ends early (%s); keeping %d frames", ffmpeg_reason(exc), self.frames)
        check_cancel(cancel)
        self._finish()
        if progress is not None:
            progress(Progress(done=self.frames, total=self.frames, eta_s=0.0))
        skipped = self.skipped + (self.audio.skipped if self.audio else 0)
        width, height = self.vout.codec_context.width, self.vout.codec_context.height
        has_audio = self.audio is not None
        return VideoResult(Path(), self.frames, 0.0, has_audio, skipped, width, height)

    def _route(self, packet: av.Packet) -> None:
        """Send a packet to the video decoder or the audio path."""
        if self.audio is not None and packet.stream.index == self.audio.source.index:
            self.audio.push(packet)
            return
        try:
            frames = packet.decode()
        except av.FFmpegError as exc:
            codec = self.vin.codec_context  # a picture over max_pixels fails to decode: say why
            self.limits.check_declared(codec.width, codec.height, self.frames + len(self.batch))
            self.skipped += 1
            log.warning(
                "skipping a damaged video packet at %s: %s", when(packet), ffmpeg_reason(exc)
            )
            return
        for frame in frames:
            index = self.frames + len(self.batch) + 1
            self.limits.check_frame(frame, index)
            self.batch_pts.append(self.timestamps(frame.pts, frame.dts))
            seconds = (self.timestamps.last_out or 0) * self.vout.codec_context.time_base
            self.limits.check_duration(float(seconds), index)
            self.batch.append(self._upright_rgb(frame))

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
        if self.blender is not None:
            pairs = zip(self.batch, styled, strict=True)
            styled = np.stack([self.blender(rgb, out) for rgb, out in pairs])
        time_base = self.vout.codec_context.time_base
        for rgb, pts in zip(styled, self.batch_pts, strict=True):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
            frame.pts, frame.time_base = pts, time_base
            self.sink.mux(self.vout.encode(frame))
        self.frames += len(self.batch)
        self.latest = styled[-1]
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
