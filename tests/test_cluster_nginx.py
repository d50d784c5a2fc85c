"""Two real servers behind the shipped nginx config, sharing one models dir.

Viewers spread over both nodes, the job API goes to the node holding the store, a style trained
there shows up on the other node, and when a node dies its viewers come back on the survivor.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import pytest
from cluster_helpers import (
    RoamingViewer,
    free_port,
    nginx,
    nginx_binary,
    start_node,
    stop,
    wait_ready,
)
from conftest import make_style_image
from jobs_helpers import AUTH, TINY_TRAIN, TOKEN, form

pytestmark = [
    pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed"),
    pytest.mark.slow,
]


async def _wait_for(check, timeout: float = 60, what: str = "condition") -> None:
    """Poll an async check until it is true."""
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.25)


async def _healthz(session: aiohttp.ClientSession, url: str) -> dict:
    async with session.get(f"{url}/healthz") as resp:
        return await resp.json()


async def _train_through(session: aiohttp.ClientSession, front: str, painting: Path) -> str:
    """Submit a tiny training job through nginx and wait until it is done; its style name."""
    data = form({"style_image": painting}, name="shared", **TINY_TRAIN)
    async with session.post(f"{front}/api/jobs/train", data=data, headers=AUTH) as resp:
        assert resp.status == 202, await resp.text()
        job_id = (await resp.json())["id"]

    async def done() -> bool:
        async with session.get(f"{front}/api/jobs/{job_id}", headers=AUTH) as resp:
            state = (await resp.json())["state"]
        assert state in ("queued", "running", "done"), state
        return state == "done"

    await _wait_for(done, 120, "the training job")
    return "shared"


async def test_viewers_spread_styles_shared_and_a_dead_nodes_viewers_come_back(
    tmp_path: Path, models_dir: Path, content_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STYLEFUSION_ADMIN_TOKEN", TOKEN)  # inherited by both nodes
    data_a, data_b = tmp_path / "var-a", tmp_path / "var-b"
    port_a, port_b, port_front = free_port(), free_port(), free_port()
    photos = ("--content-dir", str(content_dir))  # six tiny photos: a quick training
    # nginx on this machine names the browsers; here they all are 127.0.0.1, and a dead node's
    # viewers all come back to the other node
    behind = ("--trusted-proxy", "127.0.0.1/32", "--max-peers-per-client", "8")
    a_args = ("--role", "all", "--max-peers", "6", *behind, *photos)
    a = start_node(port_a, models_dir, data_a, tmp_path / "a.log", *a_args)
    b_args = ("--role", "live", "--max-peers", "2", *behind)
    b = start_node(port_b, models_dir, data_b, tmp_path / "b.log", *b_args)
    viewers: list[RoamingViewer] = []
    try:
        with nginx(tmp_path, port_front, port_a, port_b) as front:
            async with aiohttp.ClientSession() as session:
                assert (await wait_ready(session, a.url))["jobs"] is True
                health_b = await wait_ready(session, b.url)
                assert health_b["jobs"] is False and health_b["max_peers"] == 2
                await wait_ready(session, front)
                # the job API lives on the node with the store; nginx routes it there
                async with session.get(f"{b.url}/api/jobs", headers=AUTH) as resp:
                    assert resp.status == 404
                async with session.get(f"{front}/api/jobs", headers=AUTH) as resp:
                    assert resp.status == 200
                # a style trained through the front (node a) goes live on node b (below); it
                # trains before the viewers come: its worker runs at nice 19, and the viewers
                # streamed meanwhile for half the test
                painting = make_style_image(tmp_path / "painting.png", seed=9)
                name = await _train_through(session, front, painting)

                for i, style in enumerate(("alpha", "beta", "alpha", "beta")):
                    viewer = RoamingViewer(session, front, style, seed=i)
                    await viewer.start()
                    viewers.append(viewer)
                nodes = sorted(v.node for v in viewers)
                assert nodes == sorted([f"127.0.0.1:{port_a}", f"127.0.0.1:{port_b}"] * 2), nodes
                assert (await _healthz(session, a.url))["peers"] == 2
                assert (await _healthz(session, b.url))["peers"] == 2
                for viewer in viewers:
                    await viewer.styled_stats()

                async def on_b() -> bool:
                    async with session.get(f"{b.url}/api/styles") as resp:
                        return name in [s["name"] for s in (await resp.json())["styles"]]

                await _wait_for(on_b, 30, "the trained style on node b")

                # node b is full: it answers 503 and nginx moves the next offers on to node a
                assert (await _healthz(session, b.url))["at_capacity"] is True
                extra = [RoamingViewer(session, front, s, seed=9) for s in ("beta", "alpha")]
                for viewer in extra:
                    await viewer.start()
                    assert viewer.node == f"127.0.0.1:{port_a}"
                # round robin sends one of the two to node b first
                assert any(f"127.0.0.1:{port_b}" in v.tried for v in extra), [
                    v.tried for v in extra
                ]
                viewers += extra

                # node b dies: its two viewers re-offer through nginx and land on node a
                moved = [v for v in viewers if v.node == f"127.0.0.1:{port_b}"]
                b.process.kill()
                b.process.wait(10)

                async def all_on_a() -> bool:
                    nodes = {v.node for v in viewers if v.viewer is not None}
                    ready = all(v.viewer is not None for v in viewers)
                    return ready and nodes == {f"127.0.0.1:{port_a}"}

                await _wait_for(all_on_a, 60, "the viewers of node b on node a")
                assert all(v.reconnects >= 1 for v in moved)
                for viewer in viewers:
                    await viewer.styled_stats()  # frames flow again, in each viewer's style
                assert (await _healthz(session, a.url))["peers"] == 6
    finally:
        for viewer in viewers:
            await viewer.close()
        stop(b.process)
        stop(a.process)
