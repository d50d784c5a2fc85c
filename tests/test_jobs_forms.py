"""Job forms in any order, as curl -F sends them: fields after files count as much as fields
before them, nothing sent is ignored, a repeated field or an extra file is refused, and a
refused request leaves no file behind."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from conftest import make_style_image
from jobs_helpers import AUTH, hold_queue, jobs_app, jobs_config
from media_helpers import make_clip, make_photo

from server.keys import CONFIG

Part = tuple[str, str | Path]  # a plain field, or a file (a Path)


def ordered(*parts: Part) -> aiohttp.FormData:
    """A multipart form with its parts in exactly this order."""
    data = aiohttp.FormData()
    for name, value in parts:
        if isinstance(value, Path):
            data.add_field(name, value.read_bytes(), filename=value.name)
        else:
            data.add_field(name, value)
    return data


@pytest.fixture
async def client(aiohttp_client, tmp_path: Path, models_dir: Path, content_dir: Path):
    config = jobs_config(tmp_path, models_dir, content_dir)
    return await aiohttp_client(hold_queue(jobs_app(config)))  # jobs stay queued: no CPU


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    return make_photo(tmp_path / "photo.jpg", 48, 32)


@pytest.fixture
def painting(tmp_path: Path) -> Path:
    return make_style_image(tmp_path / "painting.png", seed=5)


async def submit(client: TestClient, kind: str, *parts: Part) -> tuple[int, dict]:
    """POST a job form; (status, JSON body)."""
    resp = await client.post(f"/api/jobs/{kind}", data=ordered(*parts), headers=AUTH)
    return resp.status, await resp.json()


async def params_of(client: TestClient, body: dict) -> dict:
    """The stored params of a queued job."""
    return (await (await client.get(f"/api/jobs/{body['id']}", headers=AUTH)).json())["params"]


def files_left(client: TestClient) -> list[Path]:
    """Every file under the jobs folder."""
    return [p for p in (Path(client.app[CONFIG].data_dir) / "jobs").rglob("*") if p.is_file()]


async def test_fields_after_the_files_are_used_not_dropped(client, photo, painting):
    status, body = await submit(
        client, "render", ("content", photo), ("style_image", painting), ("size", "96")
    )
    assert status == 202, body
    params = await params_of(client, body)
    assert (params["size"], params["iterations"]) == (96, 300)  # the sent size, the default rest
    status, body = await submit(
        client,
        "train",
        ("style_image", painting),
        ("name", "after-files"),
        ("steps", "7"),
        ("batch_size", "2"),
    )
    assert status == 202, body
    params = await params_of(client, body)
    assert (params["name"], params["steps"], params["batch_size"]) == ("after-files", 7, 2)


@pytest.mark.parametrize("files_first", [False, True])
async def test_either_order_gives_the_same_job(client, tmp_path, photo, painting, files_first):
    clip = make_clip(tmp_path / "clip.mp4", frames=3)
    forms = {
        "video": ([("style", "beta"), ("strength", "0.25"), ("max_side", "64")], [("file", clip)]),
        "render": (
            [("size", "64"), ("iterations", "5"), ("optimizer", "adam")],
            [("content", photo), ("style_image", painting)],
        ),
        "train": (
            [("name", f"order-{int(files_first)}"), ("seconds", "30"), ("size", "64")],
            [("style_image", painting), ("content", photo), ("content", photo)],
        ),
    }
    expected = {
        "video": {"style": "beta", "strength": 0.25, "max_side": 64},
        "render": {"size": 64, "iterations": 5, "optimizer": "adam"},
        "train": {"name": f"order-{int(files_first)}", "seconds": 30.0, "steps": None, "size": 64},
    }
    for kind, (fields, files) in forms.items():
        parts = files + fields if files_first else fields + files
        status, body = await submit(client, kind, *parts)
        assert status == 202, (kind, body)
        params = await params_of(client, body)
        assert {k: params[k] for k in expected[kind]} == expected[kind], kind


async def test_a_bad_or_missing_field_after_the_file_refuses_it_and_deletes_it(
    client, photo, painting
):
    cases = [
        ("render", [("content", photo), ("style_image", painting), ("size", "abc")], "'size'"),
        ("render", [("content", photo), ("style_image", painting), ("size", "4096")], "2048"),
        ("render", [("content", photo), ("style_image", painting), ("colour", "red")], "colour"),
        ("train", [("style_image", painting), ("steps", "3")], "missing field 'name'"),
        ("train", [("style_image", painting), ("name", "alpha")], "overwrite"),
        ("train", [("style_image", painting), ("name", "x"), ("style_size", "16")], "style size"),
        ("train", [("style_image", painting), ("name", "x"), ("style_size", "4096")], "1024"),
    ]
    for kind, parts, words in cases:
        status, body = await submit(client, kind, *parts)
        assert status in (409, 422) and words in body["error"], (parts, body)
    assert files_left(client) == []
    # an existing name with overwrite=true after the file is fine: overwrite came in time
    status, body = await submit(
        client, "train", ("name", "alpha"), ("style_image", painting), ("overwrite", "true")
    )
    assert status == 202, body


async def test_a_field_sent_twice_is_refused(client, photo, painting):
    files = [("content", photo), ("style_image", painting)]
    for parts in (
        [("size", "64"), *files, ("size", "96")],
        [*files, ("iterations", "5"), ("iterations", "5")],
        [("size", "64"), ("size", "64"), *files],
    ):
        status, body = await submit(client, "render", *parts)
        assert status == 422 and "twice" in body["error"], (parts, body)
    assert files_left(client) == []


async def test_extra_files_are_refused_not_silently_kept(client, tmp_path, photo, painting):
    clip = make_clip(tmp_path / "clip.mp4", frames=3)
    cases = [
        ("render", [("size", "64"), *[("content", photo)] * 151, ("style_image", painting)]),
        ("render", [("content", photo), ("style_image", painting), ("style_image", painting)]),
        ("video", [("style", "alpha"), ("file", clip), ("file", clip)]),
        ("render", [("content", photo), ("style_image", painting), ("thumbnail", photo)]),
        ("train", [("name", "two"), ("style_image", painting), ("style_image", painting)]),
    ]
    for kind, parts in cases:
        status, body = await submit(client, kind, *parts)
        assert status == 400, (kind, body)
    assert files_left(client) == []
    photos = [("content", photo)] * 12  # a training takes many content photos
    status, body = await submit(
        client, "train", ("name", "many"), ("style_image", painting), *photos
    )
    assert status == 202, body
