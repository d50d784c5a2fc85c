"""Opening clips safely (local files only) and probing them: size, duration, frames, sound."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
from av.container import InputContainer
from av.video.stream import VideoStream

from .errors import InvalidInput, MediaError

log = logging.getLogger(__name__)

# "http://x", "concat:a|b", "pipe:0": anything that would make FFmpeg leave the file protocol
_URL_PREFIX = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_PROBE_PACKETS = 200  # packets read at most while looking for a first decodable frame


class MediaTooLarge(InvalidInput):
    """A clip exceeds a configured limit (duration or pixels); servers answer 413."""


@dataclass(frozen=True)
class VideoInfo:
    """What a clip holds: frame size, duration, frame count (estimated) and rate, sound."""

    width: int
    height: int
    duration_s: float
    frames: int
    fps: float
    has_audio: bool
    video_codec: str = ""
    audio_codec: str | None = None


def open_input(path: str | Path) -> InputContainer:
    """Open a local media file for reading; FFmpeg may use the `file` protocol only."""
    text = str(path)
    if "://" in text or _URL_PREFIX.match(text):
        raise InvalidInput(f"{text!r} is not a local file (URLs and protocols are not accepted)")
    local = Path(text)
    if not local.is_file():
        raise InvalidInput(f"no such file: {local}")
    try:
        # an absolute path never parses as "proto:..."; the whitelist also covers nested opens
        return av.open(str(local.resolve()), container_options={"protocol_whitelist": "file"})
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise MediaError(f"{local.name} is not a readable video: {ffmpeg_reason(exc)}") from exc


def video_stream(container: InputContainer, name: str = "input") -> VideoStream:
    """The container's first moving-picture stream (not cover art), or MediaError."""
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    raise MediaError(f"{name} has no video stream")


def frame_rate(stream: VideoStream) -> Fraction:
    """The stream's average frame rate, falling back to FFmpeg's guess, then 25."""
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate and rate > 0:
            return Fraction(rate)
    return Fraction(25)


def duration_seconds(container: InputContainer, stream: VideoStream) -> float:
    """Clip duration from the video stream, else the container, else 0."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / av.time_base
    return 0.0


def estimated_frames(container: InputContainer, stream: VideoStream) -> int:
    """The stream's frame count if the container records it, else duration x rate."""
    if stream.frames and stream.frames > 0:
        return int(stream.frames)
    return max(1, round(duration_seconds(container, stream) * float(frame_rate(stream))))


def probe_video(
    path: str | Path, max_duration_s: float | None = None, max_pixels: int | None = None
) -> VideoInfo:
    """Describe a clip after decoding its first frame; MediaError if it is not a video."""
    with open_input(path) as container:
        if container.format.name == "image2" or container.format.name.endswith("_pipe"):
            raise MediaError(f"{Path(path).name} is a still image, not a video")
        stream = video_stream(container, Path(path).name)
        first = first_frame(container, stream, Path(path).name)
        audio = container.streams.audio
        info = VideoInfo(
            width=first.height if quarter_turns(first) % 2 else first.width,
            height=first.width if quarter_turns(first) % 2 else first.height,
            duration_s=duration_seconds(container, stream),
            frames=estimated_frames(container, stream),
            fps=float(frame_rate(stream)),
            has_audio=bool(audio),
            video_codec=stream.codec_context.codec.canonical_name,
            audio_codec=audio[0].codec_context.codec.canonical_name if audio else None,
        )
    check_limits(info, max_duration_s, max_pixels)
    return info


def quarter_turns(frame: av.VideoFrame) -> int:
    """Counter-clockwise quarter turns that show a frame upright (phone clips carry a rotation)."""
    try:
        return round((frame.rotation or 0) / 90) % 4
    except (AttributeError, ValueError):
        return 0


def first_frame(container: InputContainer, stream: VideoStream, name: str) -> av.VideoFrame:
    """Decode the first video frame (proves the clip decodes); MediaError if none comes."""
    try:
        for count, packet in enumerate(container.demux(stream)):
            for frame in _decode_quietly(packet):
                return frame
            if count >= _PROBE_PACKETS:
                break
    except av.FFmpegError as exc:
        raise MediaError(f"{name} is not a decodable video: {ffmpeg_reason(exc)}") from exc
    raise MediaError(f"{name} is not a decodable video: no frame could be decoded")


def _decode_quietly(packet: av.Packet) -> list[av.VideoFrame]:
    """Decode one packet; a damaged packet gives no frames instead of an exception."""
    try:
        return packet.decode()  # type: ignore[return-value]
    except av.FFmpegError as exc:
        log.debug("skipping undecodable packet: %s", exc)
        return []


def check_limits(info: VideoInfo, max_duration_s: float | None, max_pixels: int | None) -> None:
    """Raise MediaTooLarge if the clip is longer or bigger than allowed."""
    if max_duration_s is not None and info.duration_s > max_duration_s:
        raise MediaTooLarge(
            f"clip is {info.duration_s:.1f} s long; the limit is {max_duration_s:g} s"
        )
    if max_pixels is not None and info.width * info.height > max_pixels:
        raise MediaTooLarge(
            f"clip is {info.width}x{info.height} ({info.width * info.height} pixels); "
            f"the limit is {max_pixels} pixels per frame"
        )


def ffmpeg_reason(exc: BaseException) -> str:
    """FFmpeg's message without errno noise, on one line."""
    text = getattr(exc, "strerror", None) or str(exc)
    return " ".join(str(text).split()) or type(exc).__name__
