"""POST /offer against the real app, with an in-process aiortc peer as the browser."""

from __future__ import annotations

import pytest

from server.app import create_app
from tests.webrtc_helpers import Viewer, difference, test_config

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def client(aiohttp_client, models_dir, tmp_path):
    return await aiohttp_client(create_app(test_config(models_dir, tmp_path, max_peers=1)))


async def test_stylized_frames_come_back(client):
    viewer = Viewer()
    try:
        await viewer.connect(client, style="alpha")
        image = await viewer.latest_image()
        assert image.shape == (120, 160, 3)
        assert difference(image, viewer.camera.image) > 10
    finally:
        await viewer.close()


async def test_style_switch_is_acked_and_changes_output(client):
    viewer = Viewer()
    try:
        await viewer.connect(client, style="alpha")
        await viewer.wait_open()
        before = await viewer.latest_image()
        viewer.send({"style": "beta"})
        ack = await viewer.wait_message(lambda m: m.get("event") == "style")
        assert ack == {"event": "style", "style": "beta"}
        after = await viewer.latest_image()
        assert difference(before, after) > 10
    finally:
        await viewer.close()
