"""Several real server processes behind a real nginx, and viewers that roam like the page."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiortc import RTCSessionDescription
from webrtc_helpers import Viewer

REPO = Path(__file__).resolve().parent.parent
NGINX_CONF = REPO / "deploy" / "nginx.conf"
RETRY_DELAYS_S = (1, 2, 4, 5, 5, 5, 5)  # web/app.js RETRY_DELAYS_MS
SILENCE_S = 4.0  # no control message (stats come every second) this long: the node is gone


def nginx_binary() -> str | None:
    """Debian's nginx, if installed (it lives in /usr/sbin, often not on a user's PATH)."""
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )


def free_port() -> int:
    """A TCP port free on the loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Node:
    """One `python -m server` process."""

    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        """Its own base URL (bypassing nginx)."""
        return f"http://127.0.0.1:{self.port}"


def start_node(port: int, models_dir: Path, data_dir: Path, log: Path, *extra: str) -> Node:
    """Start a CPU server process on the loopback (stdout and stderr go to `log`)."""
    args = [sys.executable, "-m", "server", "--device", "cpu", "--no-compile", "--threads", "1"]
    args += ["--port", str(port), "--models-dir", str(models_dir), "--data-dir", str(data_dir)]
    with open(log, "wb") as out:
        process = subprocess.Popen([*args, *extra], stdout=out, stderr=subprocess.STDOUT)
    return Node(port, process)


def stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate a process we started, then kill it if it lingers."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@contextlib.contextmanager
def nginx(tmp: Path, listen: int, jobs_node: int, live_node: int) -> Iterator[str]:
    """The shipped deploy/nginx.conf on loopback ports, run from a prefix in tmp; its base URL."""
    binary = nginx_binary()
    assert binary is not None
    conf = NGINX_CONF.read_text()
    conf = conf.replace("worker_processes auto;", "worker_processes 1;")
    conf = conf.replace("listen 8080;", f"listen 127.0.0.1:{listen};")
    conf = conf.replace("127.0.0.1:8081", f"127.0.0.1:{jobs_node}")
    conf = conf.replace("127.0.0.1:8082", f"127.0.0.1:{live_node}")
    served_by = "non_idempotent;\n            add_header X-Served-By $upstream_addr always;"
    conf = conf.replace("non_idempotent;", served_by)  # tells the test which node took an offer
    prefix = tmp / "nginx"
    prefix.mkdir()
    (prefix / "nginx.conf").write_text(conf)
    directives = "daemon off;" + (" user root;" if os.geteuid() == 0 else "")
    args = [binary, "-p", str(prefix), "-e", "stderr", "-c", str(prefix / "nginx.conf")]
    with open(prefix / "nginx.log", "wb") as out:
        process = subprocess.Popen([*args, "-g", directives], stdout=out, stderr=out)
    try:
        yield f"http://127.0.0.1:{listen}"
    finally:
        stop(process)


async def wait_ready(session: aiohttp.ClientSession, url: str, timeout: float = 120) -> dict:
    """Poll `url`/healthz until it answers 200; its JSON."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(aiohttp.ClientError):
            async with session.get(f"{url}/healthz") as resp:
                if resp.status == 200:
                    return await resp.json()
        assert time.monotonic() < deadline, f"{url} never became healthy"
        await asyncio.sleep(0.2)


@dataclass
class RoamingViewer:
    """A viewer that does what the page does when its node goes away: a fresh offer, same style.

    The page sees a dead node as a failed connection; here a silent control channel (the
    server sends stats every second) counts too, as aiortc notices a dead peer only after 30 s.
    """

    session: aiohttp.ClientSession
    base_url: str
    style: str
    seed: int = 0
    viewer: Viewer | None = None
    node: str = ""  # host:port of the node that answered the last offer
    tried: list[str] = field(default_factory=list)  # the nodes nginx tried for it, in order
    reconnects: int = 0
    _watch: asyncio.Task[None] | None = field(default=None, repr=False)

    async def start(self) -> None:
        """Connect through nginx and keep watching the connection."""
        await self._connect()
        self._watch = asyncio.create_task(self._watchdog())

    async def _connect(self) -> None:
        viewer = Viewer(seed=self.seed)
        body = await viewer.offer() | {"style": self.style}
        async with self.session.post(f"{self.base_url}/offer", json=body) as resp:
            answer = await resp.json()
            assert resp.status == 200, answer
            self.tried = [n.strip() for n in resp.headers.get("X-Served-By", "").split(",")]
            self.node = self.tried[-1]
        await viewer.pc.setRemoteDescription(RTCSessionDescription(**answer))
        await viewer.wait_open(20)
        self.viewer = viewer

    async def _watchdog(self) -> None:
        heard, seen = time.monotonic(), 0
        while True:
            await asyncio.sleep(0.25)
            assert self.viewer is not None
            if len(self.viewer.messages) != seen:
                heard, seen = time.monotonic(), len(self.viewer.messages)
            state = self.viewer.pc.connectionState
            if state in ("failed", "closed") or time.monotonic() - heard > SILENCE_S:
                await self._reconnect()
                heard, seen = time.monotonic(), 0

    async def _reconnect(self) -> None:
        old, self.viewer = self.viewer, None
        if old is not None:
            await old.close()
        for delay in RETRY_DELAYS_S:  # as web/app.js: a fresh offer after 1 s, then backing off
            await asyncio.sleep(delay)
            try:
                await self._connect()
                break
            except (AssertionError, aiohttp.ClientError, TimeoutError):
                continue
        self.reconnects += 1

    async def styled_stats(self, timeout: float = 30) -> dict:
        """The next stats message of the current connection that names this viewer's style."""
        assert self.viewer is not None
        return await self.viewer.wait_message(
            lambda m: m.get("event") == "stats" and m.get("style") == self.style, timeout
        )

    async def close(self) -> None:
        """Stop watching and close the connection."""
        if self._watch is not None:
            self._watch.cancel()
            await asyncio.gather(self._watch, return_exceptions=True)
        if self.viewer is not None:
            await self.viewer.close()
