"""Synthetic clips and images for the media tests, made with PyAV and Pillow (seeded, tiny)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

WIDTH, HEIGHT = 64, 48
SAMPLE_RATE = 48000
TONE_HZ = 440.0


def moving_frame(index: int, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """A (H, W, 3) uint8 frame: gradients with a square that moves with `index`."""
    yy, xx = np.mgrid[0:height, 0:width]
    img = np.stack([xx * 255 // width, yy * 255 // height, np.full_like(xx, 90)], axis=-1)
    x0 = (index * 3) % max(1, width - 12)
    img[10:22, x0 : x0 + 12] = (250, 250, 40)
    return img.astype(np.uint8)


def sine(seconds: float, rate: int = SAMPLE_RATE) -> np.ndarray:
    """A mono 440 Hz tone as float32 samples."""
    t = np.arange(round(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.float32)


def make_clip(
    path: Path,
    frames: int = 15,
    fps: int = 10,
    audio: str | None = "aac",
    video_codec: str = "mpeg4",
    pts_ms: Sequence[int] | None = None,
    width: int = WIDTH,
    height: int = HEIGHT,
    damaged_audio: Sequence[int] = (),
    rotation: int = 0,
) -> Path:
    """Write a clip (container from the suffix) with moving frames and a sine tone.

    `pts_ms` gives each frame's time in milliseconds (irregular = variable frame rate);
    by default frames are evenly spaced at `fps`. `audio` is an encoder name or None;
    the audio packets numbered in `damaged_audio` are replaced by undecodable bytes;
    `rotation` (degrees counter-clockwise) is stored as a display matrix, as phones do.
    """
    times = list(pts_ms) if pts_ms is not None else [i * 1000 // fps for i in range(frames)]
    with av.open(str(path), "w") as out:
        video = out.add_stream(video_codec, rate=fps)
        video.codec_context.width, video.codec_context.height = width, height
        video.codec_context.pix_fmt = "yuv420p"
        video.codec_context.time_base = Fraction(1, 1000)
        if rotation:
            video.set_display_rotation(rotation)
        sound = out.add_stream(audio, rate=SAMPLE_RATE, layout="mono") if audio else None
        for i, ms in enumerate(times):
            frame = av.VideoFrame.from_ndarray(moving_frame(i, width, height), format="rgb24")
            frame = frame.reformat(format="yuv420p")
            frame.pts, frame.time_base = ms, Fraction(1, 1000)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if sound is not None:
            _write_tone(out, sound, (times[-1] + 1000 / fps) / 1000, set(damaged_audio))
    return path


def _write_tone(
    out: av.container.OutputContainer, stream: av.AudioStream, seconds: float, damaged: set[int]
) -> None:
    """Encode a sine tone of `seconds` into an audio stream, in 960-sample frames."""
    pcm = (sine(seconds) * 32767).astype(np.int16)
    packets: list[av.Packet] = []
    for start in range(0, len(pcm), 960):
        chunk = pcm[None, start : start + 960]  # (1, n) int16
        frame = av.AudioFrame.from_ndarray(chunk, format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts, frame.time_base = start, Fraction(1, SAMPLE_RATE)
        packets += stream.encode(frame)
    packets += stream.encode(None)
    for index, packet in enumerate(packets):
        out.mux(_garbage_like(packet) if index in damaged else packet)


def make_song(path: Path, seconds: float = 1.0) -> Path:
    """An audio-only file (a tone), which is not a video."""
    with av.open(str(path), "w") as out:
        _write_tone(out, out.add_stream("aac", rate=SAMPLE_RATE, layout="mono"), seconds, set())
    return path


def _garbage_like(packet: av.Packet) -> av.Packet:
    """A packet with the same timing whose bytes no decoder accepts."""
    junk = av.Packet(b"\xff" * max(16, packet.size))
    junk.pts, junk.dts, junk.duration = packet.pts, packet.dts, packet.duration
    junk.time_base, junk.stream = packet.time_base, packet.stream
    return junk


@dataclass(frozen=True)
class ClipFacts:
    """What a player would see in a clip."""

    frames: list[np.ndarray]  # (H, W, 3) uint8 RGB each
    times: list[float]  # presentation time of each frame, seconds
    audio_seconds: float | None  # length of the sound track, None without one
    audio_rms: float  # loudness of the decoded sound
    video_codec: str
    audio_codec: str | None
    pix_fmt: str


def read_clip(path: Path) -> ClipFacts:
    """Decode a whole clip: its frames, their times, and its sound's length and loudness."""
    with av.open(str(path)) as clip:
        video = clip.streams.video[0]
        frames, times = [], []
        for frame in clip.decode(video):
            frames.append(frame.to_ndarray(format="rgb24"))
            times.append(float(frame.pts * frame.time_base))
        pix_fmt = video.codec_context.pix_fmt
        codec = video.codec_context.name
    audio_seconds, rms, audio_codec = _read_audio(path)
    return ClipFacts(frames, times, audio_seconds, rms, codec, audio_codec, pix_fmt)


def _read_audio(path: Path) -> tuple[float | None, float, str | None]:
    """(track length in seconds, RMS of the samples, codec) of the first audio stream."""
    with av.open(str(path)) as clip:
        if not clip.streams.audio:
            return None, 0.0, None
        stream = clip.streams.audio[0]
        chunks = [f.to_ndarray().astype(np.float64).ravel() for f in clip.decode(stream)]
        samples = np.concatenate(chunks) if chunks else np.zeros(1)
        if samples.dtype.kind in "iu" or np.abs(samples).max() > 1.5:
            samples = samples / 32768.0
        if stream.duration and stream.time_base:
            seconds = float(stream.duration * stream.time_base)  # as the muxer's edit list says
        else:
            seconds = len(samples) / stream.codec_context.sample_rate
        return seconds, float(np.sqrt(np.mean(samples**2))), stream.codec_context.name


def make_photo(path: Path, width: int = 40, height: int = 24, seed: int = 0) -> Path:
    """A small seeded photo-like image whose left half is red and right half blue."""
    rng = np.random.default_rng(seed)
    img = np.zeros((height, width, 3), np.uint8)
    img[:, : width // 2] = (220, 30, 30)
    img[:, width // 2 :] = (30, 30, 220)
    img = np.clip(img.astype(int) + rng.integers(-10, 10, img.shape), 0, 255).astype(np.uint8)
    Image.fromarray(img).save(path)
    return path
