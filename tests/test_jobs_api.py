"""The job API end to end on CPU: auth, each job kind, cancel, results and previews."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from aiohttp.test_utils import TestClient
from conftest import make_style_image
from jobs_helpers import (
    AUTH,
    TINY_TRAIN,
    form,
    job,
    jobs_app,
    jobs_config,
    submit,
    wait_job,
)
from media_helpers import make_clip, make_photo, read_clip
from PIL import Image

from server.config import ServerConfig


async def _client(aiohttp_client, config: ServerConfig) -> TestClient:
    return await aiohttp_client(jobs_app(config))


async def test_every_jobs_call_needs_the_token(
    aiohttp_client, tmp_path: Path, models_dir: Path, content_dir: Path
) -> None:
    client = await _client(aiohttp_client, jobs_config(tmp_path, models_dir, content_dir))
    calls = [
        ("GET", "/api/jobs"),
        ("GET", "/api/jobs/abc"),
        ("GET", "/api/jobs/abc/result"),
        ("POST", "/api/jobs/abc/cancel"),
        ("DELETE", "/api/jobs/abc"),
        ("POST", "/api/jobs/train"),
        ("POST", "/api/jobs/video"),
        ("POST", "/api/jobs/render"),
    ]
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "test-admin-token"}):
        for method, path in calls:
            resp = await client.request(method, path, headers=headers)
            assert resp.status == 401, (method, path, headers)
            assert "token" in (await resp.json())["error"]
    resp = await client.get("/api/jobs", headers=AUTH)
    assert resp.status == 200 and (await resp.json()) == []
    missing = await client.get("/api/jobs/abc", headers=AUTH)
    assert missing.status == 404 and "error" in await missing.json()


async def test_admin_page_is_served_without_token(
    aiohttp_client, tmp_path: Path, models_dir: Path, content_dir: Path
) -> None:
    client = await _client(aiohttp_client, jobs_config(tmp_path, models_dir, content_dir))
    page = await client.get("/admin")
    assert page.status == 200 and "<html" in (await page.text()).lower()
    for asset in ("admin.js", "admin.css"):
        assert (await client.get(f"/admin/{asset}")).status == 200
    assert (await client.get("/admin/../config.py")).status == 404


async def test_train_job_makes_a_style_with_losses_and_previews(
    aiohttp_client, tmp_path: Path, models_dir: Path, content_dir: Path
) -> None:
    client = await _client(aiohttp_client, jobs_config(tmp_path, models_dir, content_dir))
    style = make_style_image(tmp_path / "painting.png", seed=5)
    job_id = await submit(client, "train", form({"style_image": style}, name="mine", **TINY_TRAIN))
    done = await wait_job(client, job_id)
    assert done["state"] == "done", done
    assert done["kind"] == "train" and done["progress"] == 1
    assert done["history"] and "loss" in done["history"][-1] and "loss" in done["metrics"]
    assert (models_dir / "mine" / "lite.safetensors").is_file()
    preview = await client.get(done["preview_url"], headers=AUTH)
    assert preview.status == 200
    assert Image.open(io.BytesIO(await preview.read())).format == "JPEG"
    meta = await client.get(done["result_url"], headers=AUTH)
    written = json.loads(await meta.read())
    assert meta.status == 200 and written["name"] == "mine"
    assert written["variants"]["lite"]["training"]["config"]["style_size"] == 64  # as asked
    assert meta.headers["Content-Disposition"] == 'attachment; filename="mine-meta.json"'
    again = await client.post(
        "/api/jobs/train", data=form({"style_image": style}, name="mine"), headers=AUTH
    )
    assert again.status == 409 and "overwrite" in (await again.json())["error"]
    listing = await (await client.get("/api/jobs", headers=AUTH)).json()
    assert [j["id"] for j in listing] == [job_id]


async def test_a_painting_a_name_and_a_budget_train_on_the_shipped_photos(
    aiohttp_client, tmp_path: Path, models_dir: Path
) -> None:
    config = ServerConfig(
        models_dir=models_dir,
        data_dir=tmp_path / "var",
        device="cpu",
        admin_token="test-admin-token",
        compile=False,
    )
    client = await _client(aiohttp_client, config)
    style = make_style_image(tmp_path / "painting.png", seed=5)
    fields = {"name": "fresh", "steps": "2", "size": "32", "batch_size": "2"}
    job_id = await submit(client, "train", form({"style_image": style}, **fields))
    done = await wait_job(client, job_id)
    assert done["state"] == "done", done
    meta = json.loads((models_dir / "fresh" / "meta.json").read_text())
    recorded = meta["variants"]["lite"]["training"]["config"]
    assert recorded["content_dir"] and str(tmp_path) not in json.dumps(meta)
    assert [v for v in recorded.values() if isinstance(v, str) and v.startswith("/")] == []


async def test_video_job_gives_a_stylized_mp4_with_sound(
    aiohttp_client, tmp_path: Path, models_dir: Path, content_dir: Path
) -> None:
    client = await _client(aiohttp_client, jobs_config(tmp_path, models_dir, content_dir))
    clip = make_clip(tmp_path / "Holiday Trip.mp4", frames=8, fps=10)
    job_id = await submit(client, "video", form({"file": clip}, style="alpha", strength="1"))
    done = await wait_job(client, job_id)
    assert done["state"] == "done", done
    assert done["params"]["title"] == "Holiday Trip"
    resp = await client.get(done["result_url"], headers=AUTH)
    assert resp.status == 200
    assert resp.headers["Content-Disposition"] == 'attachment; filename="holiday-trip-alpha.mp4"'
    out = tmp_path / "out.mp4"
    out.write_bytes(await resp.read())
    facts, source = read_clip(out), read_clip(clip)
    assert facts.video_codec == "h264" and len(facts.frames) == len(source.frames)
    assert facts.audio_seconds is not None and facts.audio_rms > 0.05
    diff = np.abs(facts.frames[3].astype(int) - source.frames[3].astype(int)).mean()
    assert diff > 5  # stylized, not a copy


async def test_a_clip_job_is_painted_at_the_cpu_size_unless_it_asks(
    aiohttp_client, tmp_path: Path, models_dir: Path, content_dir: Path, monkeypatch
) -> None:
    """An 11 s clip at 720 px took 7 minutes on a 2-core CPU: by default a CPU paints smaller."""
    import stylefusion.devices

    monkeypatch.setattr(stylefusion.devices, "CPU_CLIP_SIDE", 32)  # 360 in life; 64x48 clips here
    client = await _client(aiohttp_client, jobs_config(tmp_path, models_dir, content_dir))
    clip = make_clip(tmp_path / "clip.mp4", frames=6, fps=10)
    sizes = {}
    for sent in ({}, {"max_side": "0"}, {"max_side": "48"}):
        job_id = await submit(client, "video", form({"file": clip}, style="alpha", **sent))
        done = await wait_job(client, job_id)
        assert done["state"] == "done", done
        assert done["preview_url"]  # a stylized frame showed while it ran
        resp = await client.get(done["result_url"], headers=AUTH)
        (tmp_path / "out.mp4").write_bytes(await resp.read())
        shape = read_clip(tmp_path / "out.mp4").frames[0].shape[:2]
        sizes[sent.get("max_side", "default")] = (done["params"]["max_side"], shape)
    assert sizes == {"default": (32, (24, 32)), "0": (0, (48, 64)), "48": (48, (36, 48))}


async def test_render_job_writes_a_png_and_previews(
    aiohttp_client, tmp_path: Path, models_dir: Path, content_dir: Path
) -> None:
    client = await _client(aiohttp_client, jobs_config(tmp_path, models_dir, content_dir))
    files = {
        "content": make_photo(tmp_path / "Été à Paris.jpg", 48, 32),
        "style_image": make_style_image(tmp_path / "Starry Night.png", seed=3),
    }
    job_id = await submit(client, "render", form(files, size="48", iterations="6"))
    early = await job(client, job_id)
    assert early["state"] in ("queued", "running") and "result_url" not in early
    assert (await client.get(f"/api/jobs/{job_id}/result", headers=AUTH)).status in (404, 200)
    done = await wait_job(client, job_id)
    assert done["state"] == "done", done
    assert done["preview_url"] and done["history"]
    resp = await client.get(done["result_url"], headers=AUTH)
    # named after the photo and the painting, in ASCII any browser and disk takes
    disposition = resp.headers["Content-Disposition"]
    assert disposition == 'attachment; filename="ete-a-paris-starry-night.png"'
    image = Image.open(io.BytesIO(await resp.read()))
    assert image.format == "PNG" and max(image.size) == 48


async def test_cancel_stops_a_running_job_and_a_queued_one(
    aiohttp_client, tmp_path: Path, models_dir: Path, content_dir: Path
) -> None:
    client = await _client(aiohttp_client, jobs_config(tmp_path, models_dir, content_dir))
    style = make_style_image(tmp_path / "painting.png", seed=5)
    long = TINY_TRAIN | {"steps": "100000"}
    first = await submit(client, "train", form({"style_image": style}, name="long", **long))
    second = await submit(client, "train", form({"style_image": style}, name="next", **long))
    resp = await client.post(f"/api/jobs/{second}/cancel", headers=AUTH)
    assert resp.status == 200 and (await resp.json())["state"] == "cancelled"
    await wait_job(client, first, states=("running",))
    resp = await client.post(f"/api/jobs/{first}/cancel", headers=AUTH)
    assert resp.status == 200
    assert (await wait_job(client, first))["state"] == "cancelled"
    assert not (models_dir / "long").exists()
    gone = await client.get(f"/api/jobs/{first}/result", headers=AUTH)
    assert gone.status == 404 and "error" in await gone.json()
