"""POST /api/snapshot: the camera's own frame painted once, on the inference thread, as a PNG."""

from __future__ import annotations

import asyncio
import io
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from webrtc_helpers import pattern, test_config

from server.app import create_app
from stylefusion.stylizer import Stylizer


def picture(width: int = 96, height: int = 64, kind: str = "PNG") -> tuple[np.ndarray, bytes]:
    """A patterned (H, W, 3) uint8 picture and its encoded bytes."""
    rgb = pattern(width, height, seed=7)
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format=kind)
    return rgb, out.getvalue()


def png_pixels(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG"
        return np.asarray(image.convert("RGB"))


@pytest.fixture
async def client(aiohttp_client, models_dir: Path, tmp_path: Path):
    config = test_config(models_dir, tmp_path, max_snapshot_pixels=200 * 150)
    return await aiohttp_client(create_app(config))


class ModelSpy:
    """Records which thread runs each model call and whether it was eager; can hold eager ones."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[str, bool, tuple[int, ...]]] = []
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.gate.set()
        original = Stylizer.__call__

        def spy(stylizer, frames, strength=1.0, *, norms=None, eager=False):
            self.calls.append((threading.current_thread().name, eager, tuple(frames.shape)))
            if eager:
                self.entered.set()
                self.gate.wait(30)
            return original(stylizer, frames, strength, norms=norms, eager=eager)

        monkeypatch.setattr(Stylizer, "__call__", spy)


async def test_a_snapshot_is_the_posted_picture_painted_at_its_own_size(
    client, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = ModelSpy(monkeypatch)
    rgb, body = picture(96, 64)
    headers = {"Content-Type": "image/png"}
    resp = await client.post("/api/snapshot?style=alpha&strength=1", data=body, headers=headers)
    assert resp.status == 200, await resp.text()
    assert resp.headers["Content-Type"] == "image/png"
    painted = png_pixels(await resp.read())
    assert painted.shape == (64, 96, 3)  # the picture's own size, not the stream's
    expected = Stylizer.from_style(models_dir / "alpha", device="cpu")(rgb)[0]
    assert np.abs(painted.astype(int) - expected.astype(int)).mean() < 1
    # painted by the thread that owns the model, eager (a one-off size is not compiled)
    assert ("inference", True, (1, 64, 96, 3)) in spy.calls[:1]

    resp = await client.post("/api/snapshot?style=beta&strength=0", data=body, headers=headers)
    assert np.array_equal(png_pixels(await resp.read()), rgb)  # strength 0: the picture as sent


async def test_a_jpeg_from_the_page_is_painted_too(client) -> None:
    _, body = picture(120, 90, "JPEG")
    resp = await client.post("/api/snapshot", data=body, headers={"Content-Type": "image/jpeg"})
    assert resp.status == 200  # the server's default style, full strength
    assert png_pixels(await resp.read()).shape == (90, 120, 3)


@pytest.mark.parametrize(
    ("query", "content_type", "body", "status", "words"),
    [
        ("style=alpha", "text/plain", picture()[1], 415, "image/jpeg"),
        ("style=alpha", "image/png", b"not a picture at all", 415, "not a PNG"),
        ("style=alpha", "image/jpeg", picture()[1], 415, "not a JPEG"),  # a PNG sent as JPEG
        ("style=alpha", "image/png", picture(240, 160)[1], 413, "at most 30000 pixels"),
        ("style=nope", "image/png", picture()[1], 404, "unknown style"),
        ("style=alpha&strength=2", "image/png", picture()[1], 400, "within 0..1"),
        ("style=alpha&strength=nan", "image/png", picture()[1], 400, "within 0..1"),
        ("style=alpha&strength=x", "image/png", picture()[1], 400, "a number"),
    ],
)
async def test_bad_snapshots_are_refused_with_json(
    client, query: str, content_type: str, body: bytes, status: int, words: str
) -> None:
    resp = await client.post(
        f"/api/snapshot?{query}", data=body, headers={"Content-Type": content_type}
    )
    assert resp.status == status
    assert words in (await resp.json())["error"]


async def test_a_body_over_the_byte_cap_is_refused(aiohttp_client, models_dir, tmp_path) -> None:
    config = test_config(models_dir, tmp_path, max_snapshot_bytes=1000)
    client = await aiohttp_client(create_app(config))
    _, body = picture(96, 64)
    assert len(body) > 1000
    resp = await client.post("/api/snapshot", data=body, headers={"Content-Type": "image/png"})
    assert resp.status == 413 and "error" in await resp.json()


async def test_one_snapshot_at_a_time(client, monkeypatch: pytest.MonkeyPatch) -> None:
    spy = ModelSpy(monkeypatch)
    spy.gate.clear()
    _, body = picture()
    headers = {"Content-Type": "image/png"}
    first = asyncio.create_task(client.post("/api/snapshot", data=body, headers=headers))
    await asyncio.to_thread(spy.entered.wait, 30)  # the inference thread is painting it
    busy = await client.post("/api/snapshot", data=body, headers=headers)
    assert busy.status == 429 and busy.headers["Retry-After"] == "2"
    spy.gate.set()
    assert (await first).status == 200
    again = await client.post("/api/snapshot", data=body, headers=headers)
    assert again.status == 200  # its slot is free again


async def test_no_snapshot_before_a_style_is_loaded(aiohttp_client, tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    client = await aiohttp_client(create_app(test_config(tmp_path / "models", tmp_path)))
    resp = await client.post(
        "/api/snapshot", data=picture()[1], headers={"Content-Type": "image/png"}
    )
    assert resp.status == 503 and resp.headers["Retry-After"]
    assert "no style is loaded yet" in (await resp.json())["error"]


async def test_the_page_config_names_the_snapshot_limits(client) -> None:
    config = await (await client.get("/api/config")).json()
    assert config["snapshot"] == {"max_pixels": 200 * 150, "max_bytes": 8 * 2**20}
