"""Opening clips safely (local files only) and probing them: size, duration, frames, sound."""

from __future__ import annotations

import argparse
import errno
import json
import logging
import re
import resource
import subprocess
import sys
from dataclasses import asdict, dataclass
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
PROBE_TIMEOUT_S = 60.0  # a child probe running longer than this is killed


class MediaTooLarge(InvalidInput):
    """A clip exceeds a configured limit (duration or pixels); servers answer 413."""


@dataclass(frozen=True)
class VideoInfo:
    """What a clip holds: frame size, duration and frame count (None: unknown), rate, sound."""

    width: int
    height: int
    duration_s: float | None  # raw streams (.h264) do not say how long they are
    frames: int | None
    fps: float
    has_audio: bool
    video_codec: str = ""
    audio_codec: str | None = None


def open_input(path: str | Path, max_pixels: int | None = None) -> InputContainer:
    """Open a local media file for reading; FFmpeg may use the `file` protocol only.

    With `max_pixels`, FFmpeg's decoders refuse to allocate larger pictures (so a tiny file
    declaring a huge size cannot make FFmpeg's stream analysis take gigabytes).
    """
    text = str(path)
    if "://" in text or _URL_PREFIX.match(text):
        raise InvalidInput(f"{text!r} is not a local file (URLs and protocols are not accepted)")
    local = Path(text)
    if not local.is_file():
        raise InvalidInput(f"no such file: {local}")
    try:
        # an absolute path never parses as "proto:..."; the whitelist also covers nested opens
        return av.open(
            str(local.resolve()),
            container_options={"protocol_whitelist": "file"},
            options={"max_pixels": str(max_pixels)} if max_pixels else None,
        )
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise _media_error(exc, f"{local.name} is not a readable video") from exc


def video_stream(container: InputContainer, name: str = "input") -> VideoStream:
    """The container's first moving-picture stream (not cover art), or MediaError."""
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    raise MediaError(f"{name} has no video stream")


def frame_rate(stream: VideoStream) -> Fraction:
    """The stream's average frame rate, falling back to FFmpeg's guess, then 25.

    A stream without a stored duration (raw .h264) has a made-up average (FFmpeg's 25 fps),
    so the rate its own headers give (H.264 VUI timing) goes first there.
    """
    rates = (stream.average_rate, stream.guessed_rate, stream.base_rate)
    if not stream.duration:
        rates = (stream.codec_context.framerate, *rates)
    for rate in rates:
        if rate and rate > 0:
            return Fraction(rate)
    return Fraction(25)


def duration_seconds(container: InputContainer, stream: VideoStream) -> float | None:
    """Clip duration from the video stream, else the container; None if neither says."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / av.time_base
    return None


def estimated_frames(container: InputContainer, stream: VideoStream) -> int | None:
    """The stream's frame count if the container records it, else duration x rate, else None."""
    if stream.frames and stream.frames > 0:
        return int(stream.frames)
    seconds = duration_seconds(container, stream)
    return None if seconds is None else max(1, round(seconds * float(frame_rate(stream))))


def check_declared_size(stream: VideoStream, max_pixels: int | None) -> None:
    """MediaTooLarge if the stream's headers declare frames over `max_pixels` (nothing decoded)."""
    width, height = stream.codec_context.width or 0, stream.codec_context.height or 0
    if max_pixels is not None and width * height > max_pixels:
        raise MediaTooLarge(
            f"clip declares {width}x{height} frames ({width * height} pixels); "
            f"the limit is {max_pixels} pixels per frame"
        )


def probe_video(
    path: str | Path, max_duration_s: float | None = None, max_pixels: int | None = None
) -> VideoInfo:
    """Describe a clip after decoding its first frame; MediaError if it is not a video.

    The declared frame size is checked before anything is decoded.
    """
    with open_input(path, max_pixels) as container:
        if container.format.name == "image2" or container.format.name.endswith("_pipe"):
            raise MediaError(f"{Path(path).name} is a still image, not a video")
        stream = video_stream(container, Path(path).name)
        check_declared_size(stream, max_pixels)
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
        raise _media_error(exc, f"{name} is not a decodable video") from exc
    raise MediaError(f"{name} is not a decodable video: no frame could be decoded")


def _decode_quietly(packet: av.Packet) -> list[av.VideoFrame]:
    """Decode one packet; a damaged packet gives no frames instead of an exception."""
    try:
        return packet.decode()  # type: ignore[return-value]
    except av.FFmpegError as exc:
        if out_of_memory(exc):
            raise
        log.debug("skipping undecodable packet: %s", exc)
        return []


def out_of_memory(exc: BaseException) -> bool:
    """Whether FFmpeg failed for want of memory (e.g. under a probe's address-space cap)."""
    return isinstance(exc, MemoryError) or getattr(exc, "errno", None) == errno.ENOMEM


def _media_error(exc: BaseException, what: str) -> MediaError:
    """MediaTooLarge when FFmpeg ran out of memory, else MediaError with FFmpeg's reason."""
    if out_of_memory(exc):
        return MediaTooLarge(f"{what} within the memory allowed")
    return MediaError(f"{what}: {ffmpeg_reason(exc)}")


def check_limits(info: VideoInfo, max_duration_s: float | None, max_pixels: int | None) -> None:
    """Raise MediaTooLarge if the clip is longer or bigger than allowed (unknown length passes)."""
    if max_duration_s is not None and (info.duration_s or 0.0) > max_duration_s:
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


def probe_video_isolated(
    path: str | Path,
    max_duration_s: float | None = None,
    max_pixels: int | None = None,
    memory_mb: int = 1024,
    timeout_s: float = PROBE_TIMEOUT_S,
) -> VideoInfo:
    """probe_video in a child process whose address space is capped at `memory_mb`.

    Whatever a hostile file makes FFmpeg allocate, the caller's process does not grow; a
    probe that runs out of memory is reported as MediaTooLarge, one that dies as MediaError.
    """
    command = [sys.executable, "-m", __name__, str(Path(path).resolve()), "--memory-mb"]
    command += [str(memory_mb), "--max-seconds", str(max_duration_s or 0)]
    command += ["--max-pixels", str(max_pixels or 0)]
    name = Path(path).name
    try:
        done = subprocess.run(command, capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise MediaError(f"{name} took over {timeout_s:g} s to probe") from exc
    try:
        answer = json.loads(done.stdout.decode() or "null")
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        log.warning("probe of %s ended with code %s", name, done.returncode)
        raise MediaTooLarge(f"{name} needs more memory to probe than allowed")
    if "info" in answer:
        return VideoInfo(**answer["info"])
    error = MediaTooLarge if answer.get("too_large") else MediaError
    raise error(answer.get("error", "probe failed"))


def _probe_main(argv: list[str] | None = None) -> int:
    """Child side of probe_video_isolated: cap memory, probe, print one JSON line."""
    parser = argparse.ArgumentParser(prog="python -m stylefusion.media_probe")
    parser.add_argument("path")
    parser.add_argument("--memory-mb", type=int, default=1024)
    parser.add_argument("--max-seconds", type=float, default=0)
    parser.add_argument("--max-pixels", type=int, default=0)
    args = parser.parse_args(argv)
    limit = args.memory_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        info = probe_video(args.path, args.max_seconds or None, args.max_pixels or None)
        answer: dict[str, object] = {"info": asdict(info)}
    except MemoryError:
        answer = {"error": "the clip needs more memory to probe than allowed", "too_large": True}
    except InvalidInput as exc:
        answer = {"error": str(exc), "too_large": isinstance(exc, MediaTooLarge)}
    print(json.dumps(answer))
    return 0


if __name__ == "__main__":
    raise SystemExit(_probe_main())
