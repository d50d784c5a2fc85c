"""Styles of one multi-style network: mixed-style batches and live blends, with aiortc viewers."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
import torch
from conftest import make_tiny_multistyle, make_tiny_style
from webrtc_helpers import Viewer, difference, test_config

from server.app import create_app
from server.keys import METRICS
from server.live.keys import BATCHER
from stylefusion.stylizer import Stylizer
from stylefusion.transformer_net import TransformerNet

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def multi(tmp_path):
    """A models dir with two styles of one tiny backbone (ink, oil) and a single-style one."""
    root = tmp_path / "models"
    root.mkdir()
    net = make_tiny_multistyle(root, ["ink", "oil"], seed=7)
    make_tiny_style(root, "alpha", seed=1)
    return root, net


@pytest.fixture
async def client(aiohttp_client, multi, tmp_path):
    return await aiohttp_client(create_app(test_config(multi[0], tmp_path)))


def mixed_calls(client) -> float:
    """Model calls that held frames of two or more styles, from the live metrics."""
    samples = client.app[METRICS].batch_styles.collect()[0].samples
    buckets = {s.labels["le"]: s.value for s in samples if s.name.endswith("_bucket")}
    return buckets["+Inf"] - buckets["1.0"]


def painted(net: TransformerNet, image: np.ndarray, norms: torch.Tensor) -> np.ndarray:
    """What the network paints a camera picture as, with these (1, P) norms."""
    return Stylizer(net, "cpu")(image, norms=norms)[0]


async def test_two_viewers_in_two_styles_share_one_model_call(client, multi):
    _, net = multi
    ink, oil = Viewer(seed=1), Viewer(seed=1)  # the same camera picture
    try:
        await ink.connect(client, style="ink")
        await oil.connect(client, style="oil")
        for _ in range(600):
            if mixed_calls(client):
                break
            await asyncio.sleep(0.05)
        assert mixed_calls(client) > 0  # one call held frames of both styles
        assert client.app[BATCHER].batch_sizes[2] > 0
        # each viewer still gets its own style
        camera = ink.camera.image
        inked, oiled = await ink.latest_image(), await oil.latest_image()
        expected_ink = painted(net, camera, net.style_norms([0]))
        expected_oil = painted(net, camera, net.style_norms([1]))
        assert difference(inked, expected_ink) < difference(inked, expected_oil)
        assert difference(oiled, expected_oil) < difference(oiled, expected_ink)
    finally:
        await ink.close()
        await oil.close()


async def test_a_blend_is_acked_and_paints_the_lerped_norms(client, multi):
    _, net = multi
    viewer = Viewer()
    try:
        await viewer.connect(client, style="ink")
        await viewer.wait_open()
        viewer.send({"blend": {"style": "oil", "amount": 0.5}})
        ack = await viewer.wait_message(lambda m: m.get("event") == "blend", timeout=30)
        assert ack == {"event": "blend", "style": "oil", "amount": 0.5}
        blended = await viewer.latest_image()
        camera = viewer.camera.image
        half = torch.lerp(net.style_norms([0]), net.style_norms([1]), 0.5)
        expected = painted(net, camera, half)
        pure_ink = painted(net, camera, net.style_norms([0]))
        pure_oil = painted(net, camera, net.style_norms([1]))
        assert difference(pure_ink, expected) > 3 and difference(pure_oil, expected) > 3
        # the frame is the blend (codec noise apart), not either pure style
        assert difference(blended, expected) < difference(blended, pure_ink) / 2
        assert difference(blended, expected) < difference(blended, pure_oil) / 2
        viewer.messages.clear()
        viewer.send({"blend": {"style": "oil", "amount": 0}})  # off again
        off = await viewer.wait_message(lambda m: m.get("event") == "blend", timeout=30)
        assert off == {"event": "blend", "style": "oil", "amount": 0.0}
        plain = await viewer.latest_image()
        assert difference(plain, pure_ink) < difference(plain, expected)
    finally:
        await viewer.close()


async def test_a_blend_across_networks_or_malformed_is_an_error_event(client):
    viewer = Viewer()
    try:
        await viewer.connect(client, style="ink")
        await viewer.wait_open()
        for bad, says in [
            ({"blend": {"style": "alpha", "amount": 0.5}}, "only styles of one multi-style"),
            ({"blend": {"style": "oil", "amount": 2}}, "amount must be within 0..1"),
            ({"blend": {"style": "nope", "amount": 0.5}}, "unknown style"),
            ({"blend": "oil"}, '"amount": 0..1'),
        ]:
            viewer.messages.clear()
            viewer.send(bad)
            error = await viewer.wait_message(lambda m: m.get("event") == "error")
            assert says in error["error"]
        assert await viewer.next_image() is not None  # the stream goes on
    finally:
        await viewer.close()


async def test_styles_of_one_backbone_share_one_stylizer_and_single_styles_keep_theirs(client):
    body = await (await client.get("/api/styles")).json()
    networks = {s["name"]: s["network"] for s in body["styles"]}
    assert networks["ink"] == networks["oil"] != networks["alpha"]
    styles = client.app[BATCHER].lookup
    assert styles("ink").stylizer is styles("oil").stylizer
    assert styles("alpha").norms is None
    viewer = Viewer()
    try:
        await viewer.connect(client, style="alpha")  # an old single-style folder still serves
        image = await viewer.latest_image()
        assert difference(image, viewer.camera.image) > 10
    finally:
        await viewer.close()
