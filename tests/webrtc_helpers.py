"""An in-process aiortc peer that plays the browser against the real app, plus a fake camera."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from aiohttp import web
from aiohttp.test_utils import TestClient
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, VideoStreamTrack
from av import VideoFrame

from server.config import ServerConfig
from server.live.budget import CostModel
from server.live.keys import BATCHER, BUDGET

ADMIN_TOKEN = "test-token-0123456789"  # the admin token of test_config (16+ characters)


def test_config(models_dir: Path, tmp_path: Path, **overrides: Any) -> ServerConfig:
    """A ServerConfig for tests: CPU, tiny styles, fast polling and stats."""
    options: dict[str, Any] = dict(
        models_dir=models_dir,
        data_dir=tmp_path / "var",
        device="cpu",
        threads=1,
        rescan_interval_s=0.2,
        stats_interval_s=0.3,
        admin_token=ADMIN_TOKEN,
        compile=False,  # tests check behaviour; compiling tiny models only costs CPU
    )
    options.update(overrides)
    return ServerConfig(**options)


test_config.__test__ = False  # type: ignore[attr-defined] - not a pytest test


class PinnedCost(CostModel):
    """A cost model that ignores measurements: seconds per frame = per_pixel * pixels."""

    def __init__(self, per_pixel: float) -> None:
        super().__init__()
        self.per_pixel = per_pixel

    def observe(self, width: int, height: int, frames: int, seconds: float) -> None:
        """Measurements are ignored: the test decides what frames cost."""

    def per_frame(self, width: int, height: int) -> float:
        """per_pixel * pixels."""
        return self.per_pixel * width * height


def pin_cost(app: web.Application, per_pixel: float) -> None:
    """Make the app's send budget plan with a fixed cost (the next join or leave applies it)."""
    app[BUDGET].costs = app[BATCHER].costs = PinnedCost(per_pixel)


def pattern(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A smooth, seeded colour picture (H, W, 3) uint8 that survives video coding well."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi, 3)
    channels = [np.sin(xx / 17 + yy / 23 + p) for p in phase]
    return ((np.stack(channels, axis=-1) + 1) * 127.5).astype(np.uint8)


class PatternTrack(VideoStreamTrack):
    """A fake camera: the same seeded picture at 30 fps, with proper pts."""

    def __init__(self, width: int = 160, height: int = 120, seed: int = 0) -> None:
        super().__init__()
        self.image = pattern(width, height, seed)

    async def recv(self) -> VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = VideoFrame.from_ndarray(self.image, format="rgb24")
        frame.pts, frame.time_base = pts, time_base
        return frame


class FrameReceiver:
    """Received video frames in a queue (`self.frames`), read as RGB images."""

    frames: asyncio.Queue[VideoFrame]

    async def next_image(self, timeout: float = 10) -> np.ndarray:
        """The next received frame as (H, W, 3) uint8 RGB."""
        frame = await asyncio.wait_for(self.frames.get(), timeout)
        return frame.to_ndarray(format="rgb24")

    async def latest_image(self, skip: int = 5, timeout: float = 15) -> np.ndarray:
        """Skip a few frames (the codec needs some to settle), return the next one."""
        for _ in range(skip):
            await self.next_image(timeout)
        return await self.next_image(timeout)

    async def fresh_image(self, skip: int = 5, timeout: float = 15) -> np.ndarray:
        """latest_image of the frames sent from now on (those queued meanwhile are dropped)."""
        while not self.frames.empty():
            self.frames.get_nowait()
        return await self.latest_image(skip, timeout)


class Viewer(FrameReceiver):
    """A WebRTC viewer: sends a fake camera, collects stylized frames and control messages."""

    def __init__(self, width: int = 160, height: int = 120, seed: int = 0) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.camera = PatternTrack(width, height, seed)
        self.pc.addTrack(self.camera)
        self.channel = self.pc.createDataChannel("control")
        self.messages: list[dict[str, Any]] = []
        self.frames: asyncio.Queue[VideoFrame] = asyncio.Queue()
        self._message_event = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self.channel.on("message", self._on_message)
        self.pc.on("track", self._on_track)

    def _on_message(self, raw: str) -> None:
        self.messages.append(json.loads(raw))
        self._message_event.set()

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._reader = asyncio.ensure_future(self._read(track))

    async def _read(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                await self.frames.put(await track.recv())
        except MediaStreamError:
            pass

    async def offer(self) -> dict[str, str]:
        """The local SDP offer, ICE candidates included."""
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return {"sdp": self.pc.localDescription.sdp, "type": "offer"}

    async def connect(self, client: TestClient, style: str | None = None) -> None:
        """POST /offer and apply the answer; raises AssertionError on a non-200 answer."""
        body = await self.offer()
        if style is not None:
            body["style"] = style
        response = await client.post("/offer", json=body)
        answer = await response.json()
        assert response.status == 200, answer
        await self.pc.setRemoteDescription(RTCSessionDescription(**answer))

    async def wait_open(self, timeout: float = 10) -> None:
        """Wait for the control channel to open."""
        async with asyncio.timeout(timeout):
            while self.channel.readyState != "open":
                await asyncio.sleep(0.02)

    def send(self, message: dict[str, Any]) -> None:
        """Send a JSON control message."""
        self.channel.send(json.dumps(message))

    async def wait_message(
        self, match: Callable[[dict[str, Any]], bool], timeout: float = 10
    ) -> dict[str, Any]:
        """The first control message (already received or coming) that satisfies match."""
        seen = 0
        async with asyncio.timeout(timeout):
            while True:
                for message in self.messages[seen:]:
                    if match(message):
                        return message
                seen = len(self.messages)
                self._message_event.clear()
                await self._message_event.wait()

    async def switch_style(self, name: str, timeout: float = 10) -> dict[str, Any]:
        """Ask for a style over the control channel; returns the server's style event."""
        self.send({"style": name})
        return await self.wait_message(lambda m: m.get("event") == "style", timeout)

    async def close(self) -> None:
        """Close the connection and stop reading."""
        await self.pc.close()
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)


def difference(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two same-size RGB images, 0..255."""
    return float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean())


class ServerThread:
    """The real app served over TCP from a background thread with its own event loop."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.loop = asyncio.new_event_loop()
        self.app: web.Application | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, name="test-server", daemon=True)

    @property
    def url(self) -> str:
        """Base URL of the server."""
        return f"http://{self.config.host}:{self.config.port}"

    def __enter__(self) -> ServerThread:
        self._thread.start()
        if not self._ready.wait(60) or self._error is not None:
            raise RuntimeError(f"the server did not start: {self._error!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(30)

    def _serve(self) -> None:
        from server.app import create_app, runner_options

        asyncio.set_event_loop(self.loop)
        self.app = create_app(self.config)
        runner = web.AppRunner(self.app, **runner_options(self.config))
        try:
            self.loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, self.config.host, self.config.port)
            self.loop.run_until_complete(site.start())
        except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(runner.cleanup())
        self.loop.close()

    def call(self, coro: Any, timeout: float = 30) -> Any:
        """Run a coroutine on the server's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_y4m(path: Path, width: int = 320, height: int = 240, frames: int = 30) -> Path:
    """A small YUV4MPEG2 clip (a slowly moving colour pattern) for a fake camera."""
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{width} H{height} F30:1 Ip A1:1 C420jpeg\n".encode())
        for i in range(frames):
            rgb = np.roll(pattern(width, height, seed=4), shift=2 * i, axis=1)
            yuv = VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
            f.write(b"FRAME\n")
            f.write(yuv.to_ndarray().tobytes())  # Y, then U, then V planes
    return path


class FakeStylizer:
    """Inverts frames; records every call's batch (and norms); can be held at a gate."""

    def __init__(self, variant: str = "lite") -> None:
        self.variant = variant
        self.calls: list[np.ndarray] = []
        self.eager: list[bool] = []  # per call: asked for the eager model (a one-off size)
        self.norms: list[Any] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.fail = False

    def __call__(
        self, batch: np.ndarray, strength: Any = 1.0, norms: Any = None, eager: bool = False
    ) -> np.ndarray:
        self.calls.append(batch.copy())
        self.norms.append(norms)
        self.eager.append(eager)
        self.entered.set()
        self.gate.wait(10)
        if self.fail:
            raise RuntimeError("model exploded")
        styled = 255 - batch
        weights = np.broadcast_to(np.asarray(strength, np.float32), (len(batch),))
        weights = weights[:, None, None, None]
        return np.rint(batch * (1 - weights) + styled * weights).astype(np.uint8)


@dataclass(frozen=True)
class FakeRun:
    """What runs a style, as the batcher looks it up (the registry's StyleModel)."""

    stylizer: Any
    norms: Any = None  # (P,) tensor of a multi-style network's style
    network: str = ""


def frame(value: int, width: int = 32, height: int = 24) -> VideoFrame:
    """A flat grey frame whose value identifies it."""
    return VideoFrame.from_ndarray(np.full((height, width, 3), value, np.uint8), format="rgb24")


def values(batch: np.ndarray) -> list[int]:
    """The identifying grey value of each frame in a recorded batch."""
    return [int(image[0, 0, 0]) for image in batch]


CHROMIUM = Path("/usr/bin/chromium")  # Debian's chromium (.ci/run installs it)


@contextlib.contextmanager
def chromium(*camera_args: str) -> Iterator[Any]:
    """A headless Chromium that grants the camera to pages; camera_args choose the fake camera."""
    from playwright.sync_api import sync_playwright

    args = ["--no-sandbox", "--use-fake-ui-for-media-stream", *camera_args]
    args += ["--disable-background-networking", "--disable-component-update"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=args)
        try:
            yield browser
        finally:
            browser.close()


async def admin_page(browser: Any, url: str, token: str = ADMIN_TOKEN) -> tuple[Any, list[str]]:
    """A Playwright (async) page signed in to /admin at `url`, and the page errors it raises."""
    page = await browser.new_page(accept_downloads=True)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("dialog", lambda dialog: dialog.accept())  # confirm() of removals
    await page.goto(url)
    await page.fill("#token", token)
    await page.click("#token-save")
    return page, errors
