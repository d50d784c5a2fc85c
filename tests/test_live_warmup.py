"""Start-up: a cold server takes viewers at once (eager serves), sizes switch as builds land."""

from __future__ import annotations

import asyncio
import logging
import shutil
import threading
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from conftest import make_tiny_multistyle, make_tiny_style
from webrtc_helpers import Viewer, difference, pin_cost, test_config

from server.app import create_app
from stylefusion.compiled import BackgroundCompiled, CompileWorker

# seconds per pixel that make 160x120 the one-viewer budget: its shapes are what start-up
# queues, and the viewer's camera sends that size
SMALL_BOX_COST = 2e-6


async def health(client: TestClient) -> dict[str, Any]:
    """GET /healthz as JSON."""
    return await (await client.get("/healthz")).json()


@pytest.mark.slow
async def test_a_cold_server_streams_at_once_and_switches_a_size_when_its_build_lands(
    aiohttp_client, models_dir, tmp_path, monkeypatch
):
    shutil.rmtree(models_dir / "beta")  # one style: fewer builds behind the one under test
    gate = threading.Event()  # holds every build: the compile cache stays cold meanwhile
    build = BackgroundCompiled.compile_now

    def held_build(self: BackgroundCompiled, example: Any) -> None:
        gate.wait(120)
        build(self, example)

    monkeypatch.setattr(BackgroundCompiled, "compile_now", held_build)
    # the build at the viewers' priority: at nice 19 it waited behind this test's own viewer
    # (and the other xdist worker) for minutes on a loaded box, while the viewer streamed on
    monkeypatch.setattr(CompileWorker, "lower_priority", lambda self, nice=0: None)
    app = create_app(test_config(models_dir, tmp_path, compile=True, max_peers=2))
    pin_cost(app, SMALL_BOX_COST)
    client = await aiohttp_client(app)
    status = await health(client)
    assert status["status"] == "ok" and status["at_capacity"] is False
    assert status["inference"]["compiled"] is True
    assert status["inference"]["builds_pending"] >= 1  # start-up queued the budget's shapes
    viewer = Viewer(160, 120)
    try:
        await viewer.connect(client)
        eager = await viewer.latest_image(timeout=60)
        assert difference(eager, viewer.camera.image) > 10  # stylized, with no build done
        sizes = (await health(client))["inference"]["sizes"]["alpha"]
        assert sizes["160x120"] == "eager"
        gate.set()
        for _ in range(3000):  # a build takes seconds to minutes on a loaded 2-core box
            sizes = (await health(client))["inference"]["sizes"]["alpha"]
            if sizes["160x120"] != "eager":
                break
            await asyncio.sleep(0.1)
        assert sizes["160x120"] in ("int8", "package")  # a CPU serves packages
        built = await viewer.fresh_image(timeout=60)  # not an eager frame queued meanwhile
        # the same picture, now from the compiled model (codec and rounding noise apart)
        assert difference(built, viewer.camera.image) > 10
        assert difference(built, eager) < difference(built, viewer.camera.image) / 2
    finally:
        gate.set()
        await viewer.close()


async def test_no_style_loaded_is_warming_up_and_the_first_style_ends_it(
    aiohttp_client, tmp_path, caplog
):
    models = tmp_path / "models"
    models.mkdir()
    client = await aiohttp_client(create_app(test_config(models, tmp_path)))
    status = await health(client)
    assert status["status"] == "warming_up" and status["at_capacity"] is True
    assert (await client.get("/")).status == 200  # the page answers meanwhile
    viewer = Viewer()
    try:
        response = await client.post("/offer", json=await viewer.offer())
        assert response.status == 503 and response.headers["Retry-After"] == "5"
        assert (await response.json())["error"].startswith("warming up: no style is loaded")
        # the page asks again every few seconds: no warning per retry
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
        make_tiny_style(models, "gamma", seed=3)  # e.g. a training job's first style
        for _ in range(600):
            if (await health(client))["status"] == "ok":
                break
            await asyncio.sleep(0.05)
        await viewer.connect(client)
        image = await viewer.latest_image()
        assert difference(image, viewer.camera.image) > 10
    finally:
        await viewer.close()


async def test_styles_of_one_backbone_queue_each_frame_size_once(
    aiohttp_client, tmp_path, monkeypatch
):
    models = tmp_path / "models"
    models.mkdir()
    make_tiny_multistyle(models, ["ink", "oil", "wax"], seed=8)
    gate = threading.Event()  # nothing builds: only what is queued counts
    monkeypatch.setattr(BackgroundCompiled, "compile_now", lambda self, *example: gate.wait(30))
    app = create_app(test_config(models, tmp_path, compile=True, max_peers=1))
    pin_cost(app, SMALL_BOX_COST)
    try:
        client = await aiohttp_client(app)
        inference = (await health(client))["inference"]
        # one viewer's box is 160x120: its 4:3 and 16:9 frames, once for the three styles
        assert inference["builds_pending"] == 2
        assert (
            inference["sizes"]["ink"]
            == inference["sizes"]["wax"]
            == {
                "160x120": "eager",
                "160x90": "eager",
            }
        )
    finally:
        gate.set()
