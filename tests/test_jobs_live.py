"""A trained style goes live: /api/styles lists it, pages hear of it, a live peer switches to it."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from conftest import make_style_image
from jobs_helpers import TINY_TRAIN, TOKEN, form, submit, wait_job
from webrtc_helpers import Viewer, difference, test_config

from server.app import create_app
from server.jobs.keys import JOB_STORE

pytestmark = pytest.mark.timeout(180)


async def test_trained_style_appears_and_a_live_peer_can_switch_to_it(
    aiohttp_client, tmp_path: Path, models_dir: Path, content_dir: Path
) -> None:
    config = test_config(models_dir, tmp_path, admin_token=TOKEN)
    shutil.copytree(content_dir, Path(config.data_dir) / "content")
    client = await aiohttp_client(create_app(config))
    viewer = Viewer()
    try:
        await viewer.connect(client, style="alpha")
        await viewer.wait_open()
        before = await viewer.latest_image()
        painting = make_style_image(tmp_path / "painting.png", seed=11)
        job_id = await submit(
            client, "train", form({"style_image": painting}, name="fresh", **TINY_TRAIN)
        )
        assert (await wait_job(client, job_id))["state"] == "done"
        announced = await viewer.wait_message(
            lambda m: (
                m.get("event") == "styles" and "fresh" in [s["name"] for s in m.get("styles", [])]
            ),
            timeout=20,
        )
        assert announced
        styles = await (await client.get("/api/styles")).json()
        assert "fresh" in [s["name"] for s in styles["styles"]]
        ack = await viewer.switch_style("fresh")
        assert ack == {"event": "style", "style": "fresh"}
        after = await viewer.latest_image()
        assert difference(before, after) > 5
    finally:
        await viewer.close()


async def test_the_worker_hears_how_many_live_peers_there_are(
    aiohttp_client, tmp_path: Path, models_dir: Path
) -> None:
    client = await aiohttp_client(create_app(test_config(models_dir, tmp_path, admin_token=TOKEN)))
    store = client.app[JOB_STORE]
    viewer = Viewer()
    try:
        await viewer.connect(client, style="alpha")
        await viewer.latest_image(skip=1)
        for _ in range(50):
            if store.setting("live_peers") == "1":
                break
            await asyncio.sleep(0.1)
        assert store.setting("live_peers") == "1"
    finally:
        await viewer.close()
