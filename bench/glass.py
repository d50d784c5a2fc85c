"""Glass-to-glass: what a viewer sees, timed from a flash in front of the camera to the screen.

In-process aiortc viewers on the same box play the browser: each camera flips between two
photos at irregular times; the viewer completes frames on the RTP marker bit (as browsers
do), classifies every stylized frame it receives as showing photo A or B, and times each
flip to the first received frame that shows it. The server side is timed per stage (jitter
buffer, decode, wait, model, encode) by wrapping aiortc's pieces, in this process only.

    python bench/live.py --mode glass --peers 1 2 4 --size 320x240 --fps 15 --seconds 30
"""

from __future__ import annotations

import asyncio
import json
import random
import resource
import statistics
import threading
import time
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from aiohttp import ClientSession
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.codecs import vpx
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import VideoFrame

from server.config import ServerConfig
from server.keys import METRICS
from server.live import rtp, track
from server.live.keys import BATCHER

PLAIN_BUFFER = rtp.MarkerJitterBuffer  # the viewers' own (untimed) marker-bit buffer
STAGES: dict[str, list[float]] = {"jitter_buffer": [], "decode": [], "encode": []}
_SERVER_FRAMES: set[int] = set()  # id() of stylized frames on their way to the encoder


class FlashCamera(MediaStreamTrack):
    """A camera at `fps` that shows photo A or B, flipping at irregular times; like a page's
    sender it scales down and slows down to the server's budget once it has one."""

    kind = "video"

    def __init__(self, width: int, height: int, fps: int, seed: int) -> None:
        super().__init__()
        rng = np.random.default_rng(seed)
        base = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        self.photos = (base // 4, 255 - base // 4)  # a dark and a bright picture
        self.fps, self.rng = fps, random.Random(seed)
        self.budget: dict[str, int] | None = None  # the server's latest budget message
        self.budgets: list[tuple[float, str]] = []  # (perf_counter, "WxH@fps") of each change
        self.showing, self.flips = 0, []  # flips: (perf_counter, photo) of each first frame
        self._next_flip = 0.0
        self._start: float | None = None
        self._due = 0.0

    async def recv(self) -> VideoFrame:
        now = time.perf_counter()
        if self._start is None:
            self._start = self._next_flip = self._due = now
        fps = min(self.fps, self.budget["max_fps"]) if self.budget else self.fps
        self._due = max(self._due + 1 / fps, now - 1 / fps)  # no catching up after a stall
        if self._due > now:
            await asyncio.sleep(self._due - now)
        now = time.perf_counter()
        if now >= self._next_flip:  # flip now, then again in 0.4..1.2 s
            self.showing = 1 - self.showing
            self.flips.append((now, self.showing))
            self._next_flip = now + self.rng.uniform(0.4, 1.2)
        frame = VideoFrame.from_ndarray(self.photos[self.showing], format="rgb24")
        if self.budget:
            height, width = self.photos[0].shape[:2]
            scale = max(1.0, width / self.budget["max_width"], height / self.budget["max_height"])
            if scale > 1.0:  # what scaleResolutionDownBy does in a browser
                frame = frame.reformat(
                    width=int(width / scale) // 2 * 2, height=int(height / scale) // 2 * 2
                )
        frame.pts, frame.time_base = int((now - self._start) * 90000), Fraction(1, 90000)
        return frame


class TimedJitterBuffer(rtp.MarkerJitterBuffer):
    """The server's marker-bit buffer, recording first packet -> frame complete."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._first: dict[int, float] = {}

    def add(self, packet: Any) -> Any:
        self._first.setdefault(packet.timestamp, time.perf_counter())
        pli, frame = super().add(packet)
        if frame is not None:
            first = self._first.pop(frame.timestamp, None)
            if first is not None:
                STAGES["jitter_buffer"].append(time.perf_counter() - first)
            self._first = {ts: t for ts, t in self._first.items() if ts > frame.timestamp}
        return pli, frame


def instrument() -> None:
    """Wrap the server's jitter buffer, decoder and encoder with timers (benchmark only)."""
    rtp.MarkerJitterBuffer = TimedJitterBuffer  # type: ignore[misc]
    decode, encode = vpx.Vp8Decoder.decode, vpx.Vp8Encoder.encode

    def timed_decode(self: Any, encoded: Any) -> Any:
        start = time.perf_counter()
        frames = decode(self, encoded)
        args = getattr(threading.current_thread(), "_args", ())
        if len(args) > 1 and isinstance(args[1], rtp.LatestFrameQueue):  # a server decoder
            STAGES["decode"].append(time.perf_counter() - start)
        return frames

    def timed_encode(self: Any, frame: Any, force_keyframe: bool = False) -> Any:
        start = time.perf_counter()
        out = encode(self, frame, force_keyframe)
        if id(frame) in _SERVER_FRAMES:
            _SERVER_FRAMES.discard(id(frame))
            STAGES["encode"].append(time.perf_counter() - start)
        return out

    vpx.Vp8Decoder.decode = timed_decode  # type: ignore[method-assign]
    vpx.Vp8Encoder.encode = timed_encode  # type: ignore[method-assign]
    recv = track.StylizedTrack.recv

    async def marked_recv(self: Any) -> VideoFrame:
        frame = await recv(self)
        _SERVER_FRAMES.add(id(frame))
        return frame

    track.StylizedTrack.recv = marked_recv  # type: ignore[method-assign]


class GlassViewer:
    """One in-process viewer: a flashing camera out, stylized frames in, classified."""

    def __init__(self, width: int, height: int, fps: int, seed: int) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.camera = FlashCamera(width, height, fps, seed)
        self.pc.addTrack(self.camera)
        self.channel = self.pc.createDataChannel("control")
        self.channel.on("message", self._on_message)
        self.received: list[tuple[float, np.ndarray]] = []  # (perf_counter, 8x8 thumbnail)
        self._readers: list[asyncio.Task[None]] = []
        self.pc.on("track", lambda t: self._readers.append(asyncio.ensure_future(self._read(t))))

    def _on_message(self, raw: str) -> None:
        follow_budget(self.camera, raw)

    async def _read(self, incoming: MediaStreamTrack) -> None:
        await read_thumbnails(incoming, self.received)

    async def connect(self, url: str, style: str | None = None) -> None:
        """POST the offer (in `style`, else the default); complete frames on the marker bit,
        as a browser does."""
        await self.pc.setLocalDescription(await self.pc.createOffer())
        body = {"sdp": self.pc.localDescription.sdp, "type": "offer"}
        if style is not None:
            body["style"] = style
        async with ClientSession() as session, session.post(url + "/offer", json=body) as r:
            answer = await r.json()
        if r.status != 200:
            raise RuntimeError(f"/offer answered {r.status}: {answer.get('error')}")
        await self.pc.setRemoteDescription(RTCSessionDescription(**answer))
        for transceiver in self.pc.getTransceivers():
            buffer = PLAIN_BUFFER(capacity=128, is_video=True)
            setattr(transceiver.receiver, rtp._RECEIVER_ATTR, buffer)  # noqa: B010

    async def close(self) -> None:
        """Hang up."""
        await self.pc.close()
        for reader in self._readers:
            reader.cancel()


def follow_budget(camera: FlashCamera, raw: str) -> None:
    """A control message in: a budget makes the camera send less or more, as a page does."""
    message = json.loads(raw)
    if message.get("event") == "budget":
        camera.budget = message
        box = f"{message['max_width']}x{message['max_height']}@{message['max_fps']}"
        camera.budgets.append((time.perf_counter(), box))


async def read_thumbnails(track: MediaStreamTrack, into: list[tuple[float, np.ndarray]]) -> None:
    """Every frame of a track as (perf_counter, 8x8 thumbnail), until the track ends."""
    try:
        while True:
            frame = await track.recv()
            small = frame.to_ndarray(format="rgb24", width=8, height=8).astype(np.float32)
            into.append((time.perf_counter(), small))
    except MediaStreamError:
        pass


def flash_latencies(viewer: GlassViewer, since: float, until: float) -> list[tuple[float, float]]:
    """(flip time, ms until the first received frame showing it) for flips in [since, until)."""
    received = viewer.received
    labels = classify(viewer, since)
    out = []
    for when, photo in viewer.camera.flips:
        if not since <= when < until:
            continue
        shown = zip(received, labels, strict=True)
        seen = next((t for (t, _), label in shown if t > when and label == photo), None)
        if seen is not None:
            out.append((when, 1000 * (seen - when)))
    return out


def classify(viewer: GlassViewer, since: float) -> list[int]:
    """Label each received frame A (0) or B (1) by the nearest of two learnt thumbnails."""
    flips, received = viewer.camera.flips, viewer.received
    refs: dict[int, list[np.ndarray]] = {0: [], 1: []}
    for (start, photo), (end, _) in zip(flips, flips[1:], strict=False):
        # frames received in the second half of a long-shown photo certainly show it
        mid = start + 0.6 * (end - start)
        refs[photo] += [small for t, small in received if mid <= t < end and t >= since - 30]
    if not refs[0] or not refs[1]:
        return [-1] * len(received)
    centres = [np.mean(refs[0], axis=0), np.mean(refs[1], axis=0)]
    return [int(np.abs(s - centres[1]).mean() < np.abs(s - centres[0]).mean()) for _, s in received]


def fps_between(viewer: GlassViewer, since: float, until: float) -> float:
    """Frames received per second in [since, until)."""
    times = [t for t, _ in viewer.received if since <= t < until]
    return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0


def percentiles(values: list[float]) -> dict[str, float]:
    """p50, p95 and the count of a list."""
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return {"p50": round(statistics.median(ordered), 1), "p95": round(p95, 1), "n": len(values)}


def rss_mb() -> float:
    """This process's resident memory now (client and server together), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def histogram_samples(app: Any, name: str) -> tuple[float, float]:
    """(sum, count) of one of the app's Prometheus histograms."""
    registry = app[METRICS].registry
    return (
        registry.get_sample_value(f"{name}_sum") or 0.0,
        registry.get_sample_value(f"{name}_count") or 0.0,
    )


def histogram_delta_mean(app: Any, name: str, before: tuple[float, float]) -> float:
    """The mean of a histogram's observations since `before` (its (sum, count) then)."""
    total, count = histogram_samples(app, name)
    return round((total - before[0]) / max(1.0, count - before[1]), 2)


def stage_report(app: Any, before: dict[str, tuple[float, float]]) -> dict[str, Any]:
    """Per-stage ms: jitter buffer, decode, encode (p50/p95), wait and model (means)."""
    report: dict[str, Any] = {k: percentiles([1000 * v for v in vs]) for k, vs in STAGES.items()}
    means = {}
    for key, name in (
        ("model", "stylefusion_inference_seconds"),
        ("in_server", "stylefusion_server_latency_seconds"),
    ):
        total, count = histogram_samples(app, name)
        total0, count0 = before[key]
        means[key] = 1000 * (total - total0) / max(1.0, count - count0)
    report["model"] = {"mean": round(means["model"], 1)}
    # decoded frame in -> stylized frame out, less the model: newest-frame and batcher waits
    report["wait"] = {"mean": round(max(0.0, means["in_server"] - means["model"]), 1)}
    return report


async def run_glass(
    url: str,
    app: Any,
    peers: int,
    size: tuple[int, int],
    fps: int,
    seconds: float,
    warmup_s: float = 4.0,
    join_at: float | None = None,
    styles: Sequence[str] = (),
) -> dict[str, Any]:
    """Stream `peers` flashing viewers for `seconds` (one joins at join_at if given); viewer i
    watches styles[i % len(styles)] (default: the server's default style)."""
    for values in STAGES.values():
        values.clear()
    width, height = size
    viewers = [GlassViewer(width, height, fps, seed) for seed in range(peers)]
    late = viewers[1:] if join_at is not None else []
    chosen = {id(v): styles[i % len(styles)] if styles else None for i, v in enumerate(viewers)}
    for viewer in viewers:
        if viewer not in late:
            await viewer.connect(url, chosen[id(viewer)])
    await asyncio.sleep(warmup_s)
    for values in STAGES.values():
        values.clear()
    before = {
        "model": histogram_samples(app, "stylefusion_inference_seconds"),
        "in_server": histogram_samples(app, "stylefusion_server_latency_seconds"),
        "batch": histogram_samples(app, "stylefusion_batch_size"),
        "styles": histogram_samples(app, "stylefusion_batch_styles"),
    }
    batches_before = dict(app[BATCHER].batch_sizes)
    dropped_before = _decoder_dropped(app)
    start, rss = time.perf_counter(), [rss_mb()]
    sampler = asyncio.ensure_future(_sample_rss(rss))
    if late:
        await asyncio.sleep(join_at or 0.0)
        joined = time.perf_counter()
        for viewer in late:
            await viewer.connect(url, chosen[id(viewer)])
        await asyncio.sleep(seconds - (joined - start))
    else:
        await asyncio.sleep(seconds)
    end = time.perf_counter()
    sampler.cancel()
    stages = stage_report(app, before)
    for viewer in viewers:
        await viewer.close()
    result: dict[str, Any] = {
        "peers": peers,
        "size": f"{width}x{height}",
        "fps_offered": fps,
        "seconds": seconds,
        "styles": [chosen[id(v)] for v in viewers],
        "per_peer": [summarize_viewer(v, start, end) for v in viewers],
        "stages_ms": stages,
        "batch_sizes": {
            size: count - batches_before.get(size, 0)
            for size, count in sorted(app[BATCHER].batch_sizes.items())
            if count > batches_before.get(size, 0)
        },
        # /metrics means over the run: frames and styles per model call
        "batch_mean": histogram_delta_mean(app, "stylefusion_batch_size", before["batch"]),
        "styles_per_call_mean": histogram_delta_mean(
            app, "stylefusion_batch_styles", before["styles"]
        ),
        # encoded frames the bounded decoder queue dropped (decoder behind: no backlog)
        "decoder_dropped": _decoder_dropped(app) - dropped_before,
        "rss_mb": {"start": round(rss[0], 1), "end": round(rss[-1], 1), "max": round(max(rss), 1)},
    }
    if late:
        result["join"] = join_report(viewers[0], start, joined, end)
    return result


def _decoder_dropped(app: Any) -> float:
    registry = app[METRICS].registry
    return registry.get_sample_value("stylefusion_decoder_dropped_total") or 0.0


async def _sample_rss(into: list[float]) -> None:
    while True:
        await asyncio.sleep(1.0)
        into.append(rss_mb())


def summarize_viewer(viewer: GlassViewer, start: float, end: float) -> dict[str, Any]:
    """fps out and glass-to-glass latency of one viewer; thirds of the run for long runs."""
    flashes = flash_latencies(viewer, start, end)
    latencies = [ms for _, ms in flashes]
    times = [t for t, _ in viewer.received if start <= t < end]
    out: dict[str, Any] = {
        "fps": round(fps_between(viewer, start, end), 1),
        "glass_to_glass_ms": percentiles(latencies),
        # to tell a stall (a long gap between frames) from a flash seen late (classifier)
        "longest_gap_ms": round(1000 * max(np.diff(times), default=0.0), 1),
        "slowest_flashes": [
            {"at_s": round(t - start, 2), "ms": round(ms, 1)}
            for t, ms in sorted(flashes, key=lambda f: -f[1])[:3]
        ],
        "budget_changes": [
            {"at_s": round(t - start, 2), "budget": box}
            for t, box in viewer.camera.budgets
            if start <= t < end
        ],
    }
    if end - start >= 60:
        third = (end - start) / 3
        first = [ms for _, ms in flash_latencies(viewer, start, start + third)]
        last = [ms for _, ms in flash_latencies(viewer, end - third, end)]
        out["first_third_ms"], out["last_third_ms"] = percentiles(first), percentiles(last)
    return out


def join_report(first: GlassViewer, start: float, joined: float, end: float) -> dict[str, Any]:
    """The first viewer's fps before the join and its longest stretch below half of it after."""
    steady = fps_between(first, start, joined)
    worst, run, t = 0.0, 0.0, joined
    while t + 1.0 <= end:  # 1 s windows, stepped by 0.25 s
        low = fps_between(first, t, t + 1.0) < steady / 2
        run = run + 0.25 if low else 0.0
        worst = max(worst, run + (0.75 if low else 0.0))
        t += 0.25
    return {"steady_fps_before": round(steady, 1), "longest_below_half_s": round(worst, 2)}


def glass_config(
    models_dir: Path,
    data_dir: Path,
    compile: bool,
    threads: int | None,
    precision: str = "auto",
) -> ServerConfig:
    """The server as `make run` would start it (compile cache in data_dir), on a free port."""
    return ServerConfig(
        models_dir=models_dir,
        data_dir=data_dir,
        device="cpu",
        port=0,
        threads=threads,
        admin_token="bench-token-0123456789",
        compile=compile,
        precision=precision,
        max_pending_per_client=64,  # every bench viewer comes from 127.0.0.1
        max_peers_per_client=64,
    )
