"""Upload safety: not media, too large, bad names, existing styles; nothing left on disk."""

from __future__ import annotations

import io
import os
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from conftest import make_style_image
from jobs_helpers import AUTH, form, jobs_app, jobs_config
from media_helpers import make_clip

from server.config import ServerConfig
from server.errors import PayloadTooLarge
from server.jobs.uploads import UploadLimits, probe_clip, probe_image


def _limits(**changes: float) -> UploadLimits:
    return UploadLimits.from_config(ServerConfig(**changes))  # type: ignore[arg-type]


def _files_left(config: ServerConfig) -> list[Path]:
    return [p for p in (Path(config.data_dir) / "jobs").rglob("*") if p.is_file()]


async def _post(client: TestClient, kind: str, data: aiohttp.FormData) -> tuple[int, str]:
    resp = await client.post(f"/api/jobs/{kind}", data=data, headers=AUTH)
    return resp.status, (await resp.json())["error"]


async def test_files_that_are_not_media_are_refused(
    aiohttp_client, tmp_path: Path, models_dir: Path, content_dir: Path
) -> None:
    config = jobs_config(tmp_path, models_dir, content_dir)
    client = await aiohttp_client(jobs_app(config))
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    status, message = await _post(client, "video", form({"file": text}, style="alpha"))
    assert status in (415, 422) and "video" in message
    status, message = await _post(
        client, "render", form({"content": text, "style_image": text}, size="48")
    )
    assert status in (415, 422) and "image" in message
    assert _files_left(config) == []


async def test_oversized_uploads_get_413_and_leave_no_file(
    aiohttp_client, tmp_path: Path, models_dir: Path, content_dir: Path
) -> None:
    config = jobs_config(
        tmp_path, models_dir, content_dir, max_clip_bytes=20_000, max_image_bytes=10_000
    )
    client = await aiohttp_client(jobs_app(config))
    big = tmp_path / "big.mp4"
    big.write_bytes(os.urandom(60_000))  # under the request cap, over the file limit: streamed
    status, message = await _post(client, "video", form({"file": big}, style="alpha"))
    assert status == 413 and "limit" in message
    huge = tmp_path / "huge.mp4"
    huge.write_bytes(os.urandom(3_000_000))  # refused from Content-Length before reading
    status, _ = await _post(client, "video", form({"file": huge}, style="alpha"))
    assert status == 413
    painting = make_style_image(tmp_path / "painting.png", seed=1, size=128)  # ~49 KB PNG
    status, _ = await _post(client, "train", form({"style_image": painting}, name="big"))
    assert status == 413
    assert _files_left(config) == []


def test_clips_over_the_duration_or_size_limit_get_413(tmp_path: Path) -> None:
    made = make_clip(tmp_path / "made.mp4", frames=30, fps=5, audio=None)  # 6 s, 64x48
    clip = made.rename(tmp_path / "upload-file-0")  # uploads are saved under server-made names
    for limits in (_limits(max_clip_seconds=5), _limits(max_clip_pixels=64 * 40)):
        with pytest.raises(PayloadTooLarge):
            probe_clip(clip, limits)
    accepted = probe_clip(clip, _limits(max_clip_seconds=10))
    assert accepted.name == "file-0.video" and accepted.is_file()


def test_images_over_the_pixel_limit_get_413(tmp_path: Path) -> None:
    made = make_style_image(tmp_path / "made.png", seed=1, size=64)
    image = made.rename(tmp_path / "upload-style_image-0")
    with pytest.raises(PayloadTooLarge):
        probe_image(image, _limits(max_image_pixels=1000))
    assert probe_image(image, _limits()).name == "style_image-0.png"


async def test_bad_style_names_and_unknown_styles_are_refused(
    aiohttp_client, tmp_path: Path, models_dir: Path, content_dir: Path
) -> None:
    config = jobs_config(tmp_path, models_dir, content_dir)
    client = await aiohttp_client(jobs_app(config))
    painting = make_style_image(tmp_path / "painting.png", seed=1)
    for bad in ("", "Has Caps", "../etc", "x" * 41):
        status, message = await _post(client, "train", form({"style_image": painting}, name=bad))
        assert status == 422 and "name" in message, bad
    status, message = await _post(client, "train", form({"style_image": painting}, name="alpha"))
    assert status == 409 and "overwrite" in message
    clip = make_clip(tmp_path / "clip.mp4", frames=3)
    status, message = await _post(client, "video", form({"file": clip}, style="nope"))
    assert status == 422 and "nope" in message
    status, message = await _post(
        client, "train", form({"style_image": painting}, name="ok", steps="0")
    )
    assert status == 422 and "steps" in message
    assert _files_left(config) == []


async def test_training_without_any_content_photos_is_refused_at_once(
    aiohttp_client, tmp_path: Path, models_dir: Path
) -> None:
    empty = tmp_path / "no-photos"
    empty.mkdir()
    config = ServerConfig(
        models_dir=models_dir,
        data_dir=tmp_path / "var",
        content_dir=empty,
        device="cpu",
        compile=False,
    )
    client = await aiohttp_client(jobs_app(config))
    token = (tmp_path / "var" / "admin-token").read_text().strip()
    painting = make_style_image(tmp_path / "painting.png", seed=1)
    resp = await client.post(
        "/api/jobs/train",
        data=form({"style_image": painting}, name="nophotos"),
        headers={"Authorization": f"Bearer {token}"},
    )
    message = (await resp.json())["error"]
    assert resp.status == 422 and "content photos" in message and str(tmp_path) not in message


async def test_chunked_uploads_without_length_are_capped_in_total(
    aiohttp_client, tmp_path: Path, models_dir: Path, content_dir: Path
) -> None:
    config = jobs_config(tmp_path, models_dir, content_dir, max_image_bytes=10_000)
    client = await aiohttp_client(jobs_app(config))
    writer = aiohttp.MultipartWriter("form-data")
    writer.append("many").set_content_disposition("form-data", name="name")
    for i in range(40):  # each under the per-file limit, together far over the request cap
        part = writer.append(os.urandom(9_000))
        part.set_content_disposition("form-data", name="content", filename=f"p{i}.jpg")
    buffer = io.BytesIO()

    class Sink:
        async def write(self, data: bytes) -> None:
            buffer.write(data)

    await writer.write(Sink())  # type: ignore[arg-type]

    async def chunks():
        data = buffer.getvalue()
        for start in range(0, len(data), 8192):
            yield data[start : start + 8192]

    resp = await client.post(
        "/api/jobs/train",
        data=chunks(),
        headers=AUTH | {"Content-Type": writer.headers["Content-Type"]},
    )
    assert resp.status == 413
    assert _files_left(config) == []
