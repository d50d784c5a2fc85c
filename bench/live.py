"""Live-server benchmark: N in-process WebRTC peers at WxH against the real app, JSON out.

Reports per run: fps each peer receives, time in the server (decoded frame in -> stylized
frame out), capture -> stylized-out latency (client encode, network, jitter buffer, decode,
queue, model: where the marker-bit change shows), full round trip, and batch sizes.

    python bench/live.py --peers 1 2 --size 320x240 --seconds 12 [--marker both]
    python bench/live.py --mode glass --peers 1 2 4 --seconds 30 --output bench/results.json
    python bench/live.py --mode long --size 640x480 --fps 30 --seconds 90 --output ...
    python bench/live.py --mode join --seconds 30 --output bench/results.json
    python bench/live.py --mode glass --peers 2 --styles 2 --output bench/results.json

`--styles N` (N >= 2) serves N styles of one multi-style network and puts viewer i in style
i % N (they share model calls: `batch_mean`, `styles_per_call_mean`); with `--separate` they
are N single-style folders instead (each its own network: no shared calls), for comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import glass
import numpy as np
import torch
from aiohttp import ClientSession, web
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, VideoStreamTrack
from av import VideoFrame
from results import merge_results

from server.app import create_app
from server.config import ServerConfig
from server.keys import METRICS
from server.live import track as track_module
from server.live.keys import BATCHER
from server.styles.keys import REGISTRY
from stylefusion.backbone import write_backbone
from stylefusion.bench import describe_machine
from stylefusion.devices import CPU_PRECISIONS
from stylefusion.style_folder import save_shared_style, save_transformer
from stylefusion.transformer_net import VARIANTS, TransformerNet, build_transformer

SERVER_OUT: dict[int, float] = {}  # pts -> when the server handed the stylized frame on
SERVER_OUT_ORDER: list[int] = []


class Camera(VideoStreamTrack):
    """A 30 fps synthetic camera that remembers when each frame was captured."""

    def __init__(self, width: int, height: int, seed: int) -> None:
        super().__init__()
        rng = np.random.default_rng(seed)
        self.image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        self.captured: dict[int, float] = {}

    async def recv(self) -> VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = VideoFrame.from_ndarray(np.roll(self.image, pts // 3000, axis=1), format="rgb24")
        frame.pts, frame.time_base = pts, time_base
        self.captured[pts] = time.perf_counter()
        return frame


def instrument_server_track() -> None:
    """Record when each stylized frame leaves the server's track (benchmark only)."""
    original = track_module.StylizedTrack.recv

    async def recv(self: Any) -> VideoFrame:
        frame = await original(self)
        SERVER_OUT[frame.pts] = time.perf_counter()
        SERVER_OUT_ORDER.append(frame.pts)
        return frame

    track_module.StylizedTrack.recv = recv  # type: ignore[method-assign]


async def run_peer(
    url: str, width: int, height: int, seed: int, seconds: float, style: str | None = None
) -> dict[str, Any]:
    """One viewer (in `style`, else the default): stream for `seconds`, return its timings."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    camera = Camera(width, height, seed)
    pc.addTrack(camera)
    received: list[tuple[int, float]] = []

    async def read(track: Any) -> None:
        try:
            while True:
                frame = await track.recv()
                received.append((frame.pts, time.perf_counter()))
        except MediaStreamError:
            pass

    readers: list[asyncio.Task[None]] = []
    pc.on("track", lambda t: readers.append(asyncio.ensure_future(read(t))))
    await pc.setLocalDescription(await pc.createOffer())
    async with ClientSession() as session:
        body = {"sdp": pc.localDescription.sdp, "type": "offer"}
        if style is not None:
            body["style"] = style
        async with session.post(url + "/offer", json=body) as response:
            answer = await response.json()
    await pc.setRemoteDescription(RTCSessionDescription(**answer))
    await asyncio.sleep(seconds)
    await pc.close()
    for reader in readers:
        reader.cancel()
    return {"camera": camera, "received": received}


def summarize(peer: dict[str, Any], warmup_s: float) -> dict[str, Any]:
    """fps and latencies of one peer after the warm-up."""
    camera, received = peer["camera"], peer["received"]
    start = min(camera.captured.values()) + warmup_s
    ours = [pts for pts in SERVER_OUT_ORDER if pts in camera.captured]
    steady = [(pts, t) for pts, t in received if t >= start]
    fps = (len(steady) - 1) / (steady[-1][1] - steady[0][1]) if len(steady) > 1 else 0.0
    to_server_out = [
        1000 * (SERVER_OUT[pts] - camera.captured[pts])
        for pts in ours
        if camera.captured[pts] >= start and pts in SERVER_OUT
    ]
    # the client's receiver maps the first RTP timestamp it sees to 0: undo that offset
    offset = ours[0] if ours else 0
    round_trip = [
        1000 * (t - camera.captured[pts + offset])
        for pts, t in steady
        if pts + offset in camera.captured
    ]
    return {
        "fps": round(fps, 1),
        "capture_to_server_out_ms": stats(to_server_out),
        "round_trip_ms": stats(round_trip),
    }


def stats(values: list[float]) -> dict[str, float]:
    """mean, p50, p95 of a list of milliseconds."""
    if not values:
        return {}
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return {
        "mean": round(statistics.fmean(values), 1),
        "p50": round(statistics.median(values), 1),
        "p95": round(p95, 1),
    }


def histogram_mean(app: web.Application, name: str) -> float:
    """Mean of a Prometheus histogram of the app, in ms."""
    registry = app[METRICS].registry
    total = registry.get_sample_value(f"{name}_sum") or 0.0
    count = registry.get_sample_value(f"{name}_count") or 0.0
    return round(1000 * total / count, 1) if count else 0.0


async def run(
    models_dir: Path,
    peers: int,
    size: tuple[int, int],
    seconds: float,
    marker: bool,
    threads: int | None = None,
    compile: bool = True,
    device: str = "cpu",
    styles: list[str] | None = None,
) -> dict[str, Any]:
    """One measurement: start the app, stream `peers` viewers (viewer i in style
    styles[i % len(styles)]), collect the numbers."""
    SERVER_OUT.clear()
    SERVER_OUT_ORDER.clear()
    config = ServerConfig(
        models_dir=models_dir,
        data_dir=models_dir.parent / "var",
        device=device,
        port=0,
        marker_bit=marker,
        threads=threads,
        admin_token="bench-admin-token-0123",
        compile=compile,
        max_pending_per_client=64,  # every bench viewer comes from 127.0.0.1
        max_peers_per_client=64,
    )
    runner, port = await start_server(config)
    app = runner.app
    try:
        width, height = size
        if compile:  # measure the steady state, not the first seconds of eager serving
            for style in app[REGISTRY].loaded():
                for batch in range(1, peers + 1):
                    await asyncio.to_thread(style.stylizer.warm_up, height, width, batch)
        url, names = f"http://127.0.0.1:{port}", styles or [None]  # type: ignore[list-item]
        results = await asyncio.gather(
            *(run_peer(url, width, height, i, seconds, names[i % len(names)]) for i in range(peers))
        )
        sizes = dict(sorted(app[BATCHER].batch_sizes.items()))
        return {
            "peers": peers,
            "size": f"{width}x{height}",
            "marker_bit": marker,
            "threads": threads,
            "compiled": compile,
            "per_peer": [summarize(r, warmup_s=3.0) for r in results],
            "server_latency_ms_mean": histogram_mean(app, "stylefusion_server_latency_seconds"),
            "queue_wait_ms_mean": histogram_mean(app, "stylefusion_queue_wait_seconds"),
            "inference_ms_mean": histogram_mean(app, "stylefusion_inference_seconds"),
            "batch_sizes": sizes,
            "styles_per_call_mean": glass.histogram_delta_mean(
                app, "stylefusion_batch_styles", (0.0, 0.0)
            ),
        }
    finally:
        await runner.cleanup()


async def start_server(config: ServerConfig) -> tuple[web.AppRunner, int]:
    """Serve the app on a free port of 127.0.0.1; returns the runner and the port."""
    runner = web.AppRunner(create_app(config))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]


def main(argv: list[str] | None = None) -> int:
    """Parse options, run every combination, print one JSON document (and merge it into
    --output)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--mode",
        choices=("server", "glass", "long", "join"),
        default="server",
        help="server: time in the server; glass: flash-to-screen per viewer; long: one run "
        "of --seconds (first vs last third, RSS); join: a second viewer joins mid-run",
    )
    parser.add_argument("--peers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--size", default="320x240")
    parser.add_argument("--fps", type=int, default=15, help="camera fps (glass, long, join)")
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--marker", choices=("on", "off", "both"), default="both")
    parser.add_argument("--variant", default="lite", choices=("lite", "full"))
    parser.add_argument(
        "--styles", type=int, default=1, help="styles of one multi-style network (viewers spread)"
    )
    parser.add_argument(
        "--separate", action="store_true", help="--styles as single-style folders instead"
    )
    parser.add_argument(
        "--max-wait-ms",
        type=float,
        default=5.0,
        help="the server's --max-wait-ms (glass, long, join; 0: no batching wait)",
    )
    parser.add_argument(
        "--threads", type=int, help="inference threads (default: all cores but one)"
    )
    parser.add_argument("--no-compile", action="store_true", help="eager model (no torch.compile)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda (the server's device)")
    parser.add_argument(
        "--precision",
        default="auto",
        choices=CPU_PRECISIONS,
        help="CPU inference precision (the server's --precision)",
    )
    parser.add_argument(
        "--data-dir", type=Path, default=Path("var/bench"), help="compile cache (kept)"
    )
    parser.add_argument("--output", type=Path, help="merge the JSON into this file")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        models = Path(tmp) / "models"
        args.style_names = bench_models(models, args.variant, args.styles, args.separate)
        if args.mode == "server":
            report = server_mode(args, models, (width, height))
        else:
            report = asyncio.run(glass_mode(args, models, (width, height)))
        report["styles"] = {"count": args.styles, "shared_network": not args.separate}
    device = torch.device(args.device)
    report |= {"variant": args.variant, "device": args.device, "machine": describe_machine(device)}
    json.dump(report, sys.stdout, indent=2)
    print()
    if args.output:
        merge_results(args.output, f"live_{args.mode}", report)
    return 0


def bench_models(models: Path, variant: str, styles: int, separate: bool) -> list[str]:
    """The models dir of a run; returns its style names. Untrained networks of the real
    architecture (speed does not depend on training), seeded, so a rerun finds its compiled
    (and int8-calibrated) packages in the cache: one single-style network, or `styles`
    styles of one multi-style network (or, `separate`, as many single-style ones)."""
    torch.manual_seed(0)
    if styles <= 1 or separate:
        names = ["bench"] if styles <= 1 else [f"bench-{i}" for i in range(styles)]
        for name in names:
            save_transformer(models / name, variant, build_transformer(variant), name=name)
        return names
    net = TransformerNet(dataclasses.replace(VARIANTS[variant], styles=styles)).eval()
    with torch.no_grad():  # distinct styles: norms away from the identity
        net.style_table.add_(torch.randn_like(net.style_table) * 0.1)
    backbone_id = write_backbone(models, net, {"bench": True})
    names = [f"bench-{i}" for i in range(styles)]
    for i, name in enumerate(names):
        save_shared_style(
            models / name, variant, net, net.style_norms(i)[0], backbone_id, name=name
        )
    return names


async def wait_for_builds(app: web.Application, timeout_s: float = 1800.0) -> float:
    """Wait until no compiled build is pending (the runs measure the steady state, not eager
    serving after a cold start); returns the seconds waited."""
    start = time.monotonic()
    while app[REGISTRY].inference()["builds_pending"] and time.monotonic() - start < timeout_s:
        await asyncio.sleep(0.5)
    return round(time.monotonic() - start, 1)


def server_mode(args: argparse.Namespace, models: Path, size: tuple[int, int]) -> dict[str, Any]:
    """The time-in-server runs for every peer count and marker setting."""
    markers = {"on": [True], "off": [False], "both": [True, False]}[args.marker]
    instrument_server_track()
    runs = [
        asyncio.run(
            run(
                models,
                peers,
                size,
                args.seconds,
                marker,
                args.threads,
                not args.no_compile,
                args.device,
                args.style_names,
            )
        )
        for peers in args.peers
        for marker in markers
    ]
    return {"runs": runs}


async def glass_mode(
    args: argparse.Namespace, models: Path, size: tuple[int, int]
) -> dict[str, Any]:
    """Glass-to-glass runs: one per peer count (long: one; join: 2 peers, one joins late)."""
    glass.instrument()
    config = glass.glass_config(
        models, args.data_dir, not args.no_compile, args.threads, args.precision
    )
    config = dataclasses.replace(config, device=args.device, max_wait_ms=args.max_wait_ms)
    runner, port = await start_server(config)  # start-up queues the budgeted shapes
    url, app, runs = f"http://127.0.0.1:{port}", runner.app, []
    try:
        builds_s = await wait_for_builds(app)
        counts = (
            [2] if args.mode == "join" else args.peers[:1] if args.mode == "long" else args.peers
        )
        for peers in counts:
            join_at = args.seconds / 3 if args.mode == "join" else None
            runs.append(
                await glass.run_glass(
                    url,
                    app,
                    peers,
                    size,
                    args.fps,
                    args.seconds,
                    join_at=join_at,
                    styles=args.style_names,
                )  # fmt: skip
            )
    finally:
        await runner.cleanup()
    return {"mode": args.mode, "builds_waited_s": builds_s, "runs": runs}


if __name__ == "__main__":
    raise SystemExit(main())
