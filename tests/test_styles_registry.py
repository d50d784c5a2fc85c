"""Styles picked up while running: new folders appear, broken ones are skipped, peers are told."""

from __future__ import annotations

import asyncio
import shutil

import pytest
import torch
from conftest import make_tiny_multistyle, make_tiny_style
from webrtc_helpers import Viewer, test_config

from server.app import create_app
from server.styles.keys import REGISTRY
from server.styles.registry import StyleRegistry
from stylefusion.compiled import BackgroundCompiled
from stylefusion.devices import int8_supported

pytestmark = pytest.mark.timeout(60)


async def style_names(client) -> list[str]:
    body = await (await client.get("/api/styles")).json()
    return [s["name"] for s in body["styles"]]


async def wait_for_styles(client, expected: list[str], timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while await style_names(client) != expected:
            await asyncio.sleep(0.1)


def break_folder(models_dir, name: str) -> None:
    """A folder that looks like a style but holds garbage."""
    folder = models_dir / name
    folder.mkdir()
    (folder / "meta.json").write_text("{not json", encoding="utf-8")
    (folder / "lite.safetensors").write_bytes(b"garbage")


async def test_new_style_folder_shows_up_without_restart(aiohttp_client, models_dir, tmp_path):
    client = await aiohttp_client(create_app(test_config(models_dir, tmp_path)))
    assert await style_names(client) == ["alpha", "beta"]
    break_folder(models_dir, "broken")
    make_tiny_style(models_dir, "gamma", seed=3, variants=("lite",))
    await wait_for_styles(client, ["alpha", "beta", "gamma"])
    health = await (await client.get("/healthz")).json()
    assert health["status"] == "ok" and "broken" not in health["styles"]
    shutil.rmtree(models_dir / "beta")
    await wait_for_styles(client, ["alpha", "gamma"])


async def test_live_peers_are_told_and_can_use_a_new_style(aiohttp_client, models_dir, tmp_path):
    client = await aiohttp_client(create_app(test_config(models_dir, tmp_path)))
    viewer = Viewer()
    try:
        await viewer.connect(client, style="alpha")
        await viewer.wait_open()
        make_tiny_style(models_dir, "gamma", seed=3)
        event = await viewer.wait_message(lambda m: m.get("event") == "styles")
        assert "gamma" in [s["name"] for s in event["styles"]]
        ack = await viewer.switch_style("gamma")
        assert ack["style"] == "gamma"
    finally:
        await viewer.close()


async def test_rescan_reports_new_and_changed_styles(models_dir):
    registry = StyleRegistry(models_dir, torch.device("cpu"))
    assert await registry.rescan() == ["alpha", "beta"]
    assert await registry.rescan() == []
    break_folder(models_dir, "broken")
    assert await registry.rescan() == []
    make_tiny_style(models_dir, "alpha", seed=9, variants=("lite",))  # retrained
    assert await registry.rescan() == ["alpha"]
    assert registry.default == "alpha"
    assert {s.variant for s in registry.loaded()} == {"lite"}  # CPU runs lite


async def test_variant_option_picks_full_weights(models_dir):
    registry = StyleRegistry(models_dir, torch.device("cpu"), variant="full")
    await registry.rescan()
    assert {s.variant for s in registry.loaded()} == {"full"}


async def test_server_starts_with_an_empty_models_dir(aiohttp_client, tmp_path):
    empty = tmp_path / "none"
    client = await aiohttp_client(create_app(test_config(empty, tmp_path)))
    body = await (await client.get("/api/styles")).json()
    assert body == {"styles": [], "default": None, "hidden": []}
    viewer = Viewer()
    try:
        response = await client.post("/offer", json=await viewer.offer())
        assert response.status == 503
    finally:
        await viewer.close()
    assert client.app[REGISTRY].default is None


async def test_styles_share_one_background_compiler(models_dir):
    registry = StyleRegistry(models_dir, torch.device("cpu"), compile=True, precision="fp32")
    await registry.rescan()
    runners = [style.stylizer.model for style in registry.loaded()]
    registry.close()
    assert len(runners) == 2
    assert all(isinstance(r, BackgroundCompiled) for r in runners)
    assert {r.worker for r in runners} == {registry.compiler}


@pytest.mark.parametrize(
    ("precision", "dtype", "mode"),
    [
        ("fp32", torch.float32, "package"),
        ("bf16", torch.bfloat16, "package"),
        pytest.param(
            "int8",
            torch.float32,
            "int8",
            marks=pytest.mark.skipif(not int8_supported(), reason="CPU without VNNI or no torchao"),
        ),
    ],
)
async def test_cpu_precisions_build_packages_in_the_background(models_dir, precision, dtype, mode):
    # every CPU precision builds AOTInductor packages in a child process: torch.compile in a
    # thread traced beside the eager model serving frames, and broke it
    registry = StyleRegistry(models_dir, torch.device("cpu"), compile=True, precision=precision)
    await registry.rescan()
    stylizer = registry.stylizer("alpha")
    registry.close()
    assert stylizer.dtype == dtype and stylizer.tuning.mode == mode
    assert isinstance(stylizer.model, BackgroundCompiled)
    assert stylizer.model.worker is registry.compiler


async def test_styles_of_one_backbone_share_a_stylizer_that_knows_their_norms(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    net = make_tiny_multistyle(models, ["ink", "oil"], seed=9)
    make_tiny_style(models, "alpha", seed=1)
    registry = StyleRegistry(models, torch.device("cpu"), compile=True, precision="fp32")
    await registry.rescan()
    shared = registry.stylizer("ink")
    assert registry.stylizer("oil") is shared is not registry.stylizer("alpha")
    torch.testing.assert_close(shared.reference_norms, net.style_norms([0, 1]))
    torch.testing.assert_close(registry.model("oil").norms, net.style_norms(1)[0])
    shutil.rmtree(models / "oil")
    await registry.rescan()
    assert registry.stylizer("ink") is shared  # the other style keeps the network loaded
    torch.testing.assert_close(shared.reference_norms, net.style_norms([0]))
    registry.close()
