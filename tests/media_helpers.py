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
    audio_layout: str = "mono",
) -> Path:
    """Write a clip (container from the suffix) with moving frames and a sine tone.

    `pts_ms` gives each frame's time in milliseconds (irregular = variable frame rate);
    by default frames are evenly spaced at `fps`. `audio` is an encoder name or None;
    the audio packets numbered in `damaged_audio` are replaced by undecodable bytes;
    `rotation` (degrees counter-clockwise) is stored as a display matrix, as phones do;
    `audio_layout` is the sound's channel layout ("mono", "stereo", "5.1", ...).
    """
    times = list(pts_ms) if pts_ms is not None else [i * 1000 // fps for i in range(frames)]
    with av.open(str(path), "w") as out:
        video = out.add_stream(video_codec, rate=fps)
        video.codec_context.width, video.codec_context.height = width, height
        video.codec_context.pix_fmt = "yuv420p"
        video.codec_context.time_base = Fraction(1, 1000)
        if rotation:
            video.set_display_rotation(rotation)
        sound = out.add_stream(audio, rate=SAMPLE_RATE, layout=audio_layout) if audio else None
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
    """Encode a sine tone of `seconds` into an audio stream, in 960-sample frames.

    Every channel of the stream's layout carries the tone; the encoder converts the samples.
    """
    layout = stream.codec_context.layout
    pcm = (sine(seconds) * 32767).astype(np.int16)
    packets: list[av.Packet] = []
    for start in range(0, len(pcm), 960):
        chunk = np.repeat(pcm[None, start : start + 960], len(layout.channels), axis=0)
        frame = av.AudioFrame.from_ndarray(chunk, format="s16p", layout=layout.name)  # (C, n)
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


def write_frames(path: Path, frames: Sequence[np.ndarray], fps: int = 10, crf: int = 4) -> Path:
    """An H.264 clip of exactly these (H, W, 3) uint8 frames, nearly lossless (no sound)."""
    height, width = frames[0].shape[:2]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.codec_context.width, stream.codec_context.height = width, height
        stream.codec_context.pix_fmt = "yuv420p"
        stream.codec_context.time_base = Fraction(1, fps)
        stream.codec_context.options = {"crf": str(crf)}
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def make_photo(path: Path, width: int = 40, height: int = 24, seed: int = 0) -> Path:
    """A small seeded photo-like image whose left half is red and right half blue."""
    rng = np.random.default_rng(seed)
    img = np.zeros((height, width, 3), np.uint8)
    img[:, : width // 2] = (220, 30, 30)
    img[:, width // 2 :] = (30, 30, 220)
    img = np.clip(img.astype(int) + rng.integers(-10, 10, img.shape), 0, 255).astype(np.uint8)
    Image.fromarray(img).save(path)
    return path


def make_h264(
    path: Path,
    frames: int = 3,
    width: int = WIDTH,
    height: int = HEIGHT,
    declared: tuple[int, int] | None = None,
    fps: int = 25,
) -> Path:
    """A raw Annex-B H.264 stream (no container, so no duration); `declared` rewrites its SPS
    to claim another frame size (width, height) without changing the coded pictures."""
    with av.open(str(path), "w", format="h264") as out:
        video = out.add_stream("libx264", rate=fps)
        video.codec_context.width, video.codec_context.height = width, height
        video.codec_context.pix_fmt = "yuv420p"
        video.codec_context.options = {"profile": "baseline", "preset": "ultrafast"}
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(moving_frame(i, width, height), format="rgb24")
            out.mux(video.encode(frame.reformat(format="yuv420p")))
        out.mux(video.encode(None))
    if declared is not None:
        path.write_bytes(_redeclare(path.read_bytes(), *declared))
    return path


def _redeclare(stream: bytes, width: int, height: int) -> bytes:
    """Annex-B bytes whose sequence parameter sets claim width x height (multiples of 16)."""
    nals = stream.split(b"\x00\x00\x01")
    for i, nal in enumerate(nals):
        if nal and nal[0] & 0x1F == 7:  # SPS
            body = _rbsp(nal[1:].rstrip(b"\x00"))
            nals[i] = nal[:1] + _escape(_sps_with_size(body, width // 16, height // 16)) + b"\x00"
    return b"\x00\x00\x01".join(nals)


def _rbsp(data: bytes) -> bytes:
    return data.replace(b"\x00\x00\x03", b"\x00\x00")


def _escape(data: bytes) -> bytes:
    out = bytearray()
    zeros = 0
    for byte in data:
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


class _Bits:
    """Read bits and Exp-Golomb codes from a byte string; write them to a list of bits."""

    def __init__(self, data: bytes) -> None:
        self.bits = [(b >> (7 - k)) & 1 for b in data for k in range(8)]
        self.pos = 0
        self.out: list[int] = []

    def u(self, n: int, copy: bool = True) -> int:
        value = 0
        for _ in range(n):
            value = value * 2 + self.bits[self.pos]
            self.pos += 1
        if copy:
            self.put(value, n)
        return value

    def ue(self, copy: bool = True) -> int:
        zeros = 0
        while self.bits[self.pos + zeros] == 0:
            zeros += 1
        self.pos += zeros
        value = self.u(zeros + 1, copy=False) - 1
        if copy:
            self.put_ue(value)
        return value

    def put(self, value: int, n: int) -> None:
        self.out += [(value >> (n - 1 - k)) & 1 for k in range(n)]

    def put_ue(self, value: int) -> None:
        n = (value + 1).bit_length()
        self.put(0, n - 1)
        self.put(value + 1, n)


def _sps_with_size(rbsp: bytes, mbs_wide: int, mbs_high: int) -> bytes:
    """A baseline-profile SPS with new picture size in macroblocks and no cropping."""
    b = _Bits(rbsp)
    profile = b.u(8)
    assert profile == 66, "make_h264 writes baseline-profile streams"
    b.u(16)  # constraint flags, level
    b.ue()  # sps id
    b.ue()  # log2_max_frame_num - 4
    if b.ue() == 0:  # pic_order_cnt_type
        b.ue()
    b.ue()  # max_num_ref_frames
    b.u(1)  # gaps_in_frame_num_allowed
    b.ue(copy=False)
    b.ue(copy=False)
    b.put_ue(mbs_wide - 1)
    b.put_ue(mbs_high - 1)
    if b.u(1) == 0:  # frame_mbs_only
        b.u(1)
    b.u(1)  # direct_8x8_inference
    if b.u(1, copy=False):  # frame_cropping: dropped
        for _ in range(4):
            b.ue(copy=False)
    b.put(0, 1)
    stop = len(b.bits) - 1 - b.bits[::-1].index(1)
    b.out += b.bits[b.pos : stop] + [1]
    b.out += [0] * (-len(b.out) % 8)
    return bytes(int("".join(map(str, b.out[i : i + 8])), 2) for i in range(0, len(b.out), 8))


def make_growing_h264(path: Path, small: int = 64, declared: int = 16000) -> Path:
    """Raw H.264: 6 s of small x small frames (past FFmpeg's probing), then declared^2 ones."""
    first = make_h264(path.with_suffix(".a.h264"), 150, small, small)
    second = make_h264(path.with_suffix(".b.h264"), 2, small, small, (declared, declared))
    path.write_bytes(first.read_bytes() + second.read_bytes())
    first.unlink()
    second.unlink()
    return path
