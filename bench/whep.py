"""Stylize once, send many: one WHIP publisher, N WHEP watchers, against the real app.

The publisher is an in-process aiortc peer with glass.py's flashing camera (it opens a
`control` channel and follows the send budget, as the live page's Share does); each watcher
is a WHEP client completing frames on the marker bit, as a browser does. Per watcher: fps
and glass-to-glass latency (a flip in front of the camera to the first frame showing it);
per run: frames through the model per second against the frames the publisher sent (stylized
once: the ratio stays near 1 whatever the watcher count).

    python bench/whep.py --watchers 2 4 --size 320x240 --fps 15 --seconds 30 \
        --output bench/results.json          # the lead's quiet-box run (results under "whep")
    python bench/whep.py --watchers 1 --seconds 4 --no-compile   # a dry run
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import glass
import numpy as np
import torch
from aiohttp import ClientSession
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack
from live import start_server
from results import merge_results

from server.keys import METRICS
from server.live import rtp
from server.live.keys import BATCHER
from stylefusion.bench import describe_machine
from stylefusion.style_folder import save_transformer
from stylefusion.transformer_net import build_transformer

TOKEN = "bench-token-0123456789"  # glass_config's admin token publishes too
TARGETS = {"watcher_fps_min": 12, "model_per_published_max": 1.2, "glass_p50_ms_max": 250}


class CountingCamera(glass.FlashCamera):
    """The flashing camera, remembering when it handed each frame to the encoder."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.sent: list[float] = []

    async def recv(self) -> Any:
        frame = await super().recv()
        self.sent.append(time.perf_counter())
        return frame


class BenchPublisher:
    """A WHIP publisher with a control channel (budgets come in, as on the live page)."""

    def __init__(self, width: int, height: int, fps: int) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.camera = CountingCamera(width, height, fps, 7)
        self.pc.addTrack(self.camera)
        channel = self.pc.createDataChannel("control")
        channel.on("message", lambda raw: glass.follow_budget(self.camera, raw))

    async def publish(self, url: str, name: str) -> None:
        """POST /whip/NAME and apply the answer."""
        await self.pc.setLocalDescription(await self.pc.createOffer())
        sdp = self.pc.localDescription.sdp
        answer, self.location = await post(f"{url}/whip/{name}", sdp, TOKEN)
        self.url = url
        await self.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))

    async def close(self) -> None:
        """DELETE the session (the stream ends, its name is free for the next run), hang up."""
        async with ClientSession() as session, session.delete(self.url + self.location) as r:
            assert r.status == 200, await r.text()
        await self.pc.close()


class BenchWatcher:
    """A WHEP watcher; `camera` and `received` are what glass.flash_latencies reads."""

    def __init__(self, camera: glass.FlashCamera) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc.addTransceiver("video", direction="recvonly")
        self.camera = camera  # the publisher's: its flips are what this watcher should see
        self.received: list[tuple[float, np.ndarray]] = []  # (perf_counter, 8x8 thumbnail)
        self._readers: list[asyncio.Task[None]] = []
        self.pc.on("track", self._on_track)

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._readers.append(asyncio.ensure_future(glass.read_thumbnails(track, self.received)))

    async def watch(self, url: str, name: str) -> None:
        """POST /whep/NAME; complete frames on the marker bit, as a browser does."""
        await self.pc.setLocalDescription(await self.pc.createOffer())
        answer, _ = await post(f"{url}/whep/{name}", self.pc.localDescription.sdp, None)
        await self.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        for transceiver in self.pc.getTransceivers():
            buffer = glass.PLAIN_BUFFER(capacity=128, is_video=True)
            setattr(transceiver.receiver, rtp._RECEIVER_ATTR, buffer)  # noqa: B010

    async def close(self) -> None:
        """Hang up."""
        await self.pc.close()
        for reader in self._readers:
            reader.cancel()


async def post(url: str, sdp: str, token: str | None) -> tuple[str, str]:
    """POST an SDP offer; the answer and Location of a 201, else RuntimeError."""
    headers = {"Content-Type": "application/sdp"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    async with ClientSession() as session, session.post(url, data=sdp, headers=headers) as r:
        body, location = await r.text(), r.headers.get("Location", "")
    if r.status != 201:
        raise RuntimeError(f"{url} answered {r.status}: {body}")
    return body, location


def model_frames(app: Any) -> int:
    """Frames through the model so far (every batch's size, summed)."""
    return sum(size * count for size, count in app[BATCHER].batch_sizes.items())


def decoded_frames(app: Any) -> float:
    """Camera frames the server decoded so far."""
    return app[METRICS].registry.get_sample_value("stylefusion_frames_in_total") or 0.0


async def run_fanout(
    url: str, app: Any, watchers: int, size: tuple[int, int], fps: int, seconds: float
) -> dict[str, Any]:
    """One publisher and `watchers` watchers for `seconds` after a warm-up."""
    publisher = BenchPublisher(*size, fps)
    await publisher.publish(url, "bench")
    audience = [BenchWatcher(publisher.camera) for _ in range(watchers)]
    for watcher in audience:
        await watcher.watch(url, "bench")
    await asyncio.sleep(4.0)  # connections up, the codecs settled, the budget sent
    start, model0, decoded0 = time.perf_counter(), model_frames(app), decoded_frames(app)
    await asyncio.sleep(seconds)
    end, model1, decoded1 = time.perf_counter(), model_frames(app), decoded_frames(app)
    for peer in (*audience, publisher):
        await peer.close()
    sent = [t for t in publisher.camera.sent if start <= t < end]
    published_fps = len(sent) / (end - start)
    model_fps = (model1 - model0) / (end - start)
    per_watcher = [glass.summarize_viewer(w, start, end) for w in audience]
    return {
        "watchers": watchers,
        "size": f"{size[0]}x{size[1]}",
        "fps_offered": fps,
        "seconds": seconds,
        "published_fps": round(published_fps, 1),
        "decoded_fps": round((decoded1 - decoded0) / (end - start), 1),
        "model_fps": round(model_fps, 1),
        "model_per_published": round(model_fps / max(published_fps, 1e-6), 2),
        "per_watcher": per_watcher,
        "met": met(per_watcher, model_fps / max(published_fps, 1e-6)),
    }


def met(per_watcher: list[dict[str, Any]], ratio: float) -> dict[str, bool]:
    """Which of the issue's targets this run meets."""
    p50s = [w["glass_to_glass_ms"].get("p50", float("inf")) for w in per_watcher]
    return {
        "watcher_fps": all(w["fps"] >= TARGETS["watcher_fps_min"] for w in per_watcher),
        "model_per_published": ratio <= TARGETS["model_per_published_max"],
        "glass_p50": all(p50 <= TARGETS["glass_p50_ms_max"] for p50 in p50s),
    }


async def bench(args: argparse.Namespace, models: Path) -> dict[str, Any]:
    """Start the server as `make run` would, then one run per watcher count."""
    config = glass.glass_config(models, args.data_dir, not args.no_compile, args.threads)
    config = dataclasses.replace(config, max_watchers=max(args.watchers) + 1)
    runner, port = await start_server(config)
    try:
        url, runs = f"http://127.0.0.1:{port}", []
        for watchers in args.watchers:
            size = tuple(int(v) for v in args.size.lower().split("x"))
            runs.append(await run_fanout(url, runner.app, watchers, size, args.fps, args.seconds))
    finally:
        await runner.cleanup()
    return {"runs": runs, "targets": TARGETS, "compiled": not args.no_compile}


def main(argv: list[str] | None = None) -> int:
    """Parse options, run, print JSON (and merge it into --output under "whep")."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--watchers", type=int, nargs="+", default=[2, 4])
    p.add_argument("--size", default="320x240", help="the publisher's camera")
    p.add_argument("--fps", type=int, default=15, help="the publisher's frame rate")
    p.add_argument("--seconds", type=float, default=30.0, help="measured seconds per run")
    p.add_argument("--threads", type=int, help="inference threads (default: all cores but one)")
    p.add_argument("--no-compile", action="store_true", help="eager model (no compiled build)")
    p.add_argument("--data-dir", type=Path, default=Path("var/bench"), help="compile cache")
    p.add_argument("--output", type=Path, help="merge the JSON into this file")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        models = Path(tmp) / "models"
        torch.manual_seed(0)  # the same untrained network as bench/live.py: cached builds match
        save_transformer(models / "bench", "lite", build_transformer("lite"), name="bench")
        report = asyncio.run(bench(args, models))
    report["machine"] = describe_machine(torch.device("cpu"))
    json.dump(report, sys.stdout, indent=2)
    print()
    if args.output:
        merge_results(args.output, "whep", report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
