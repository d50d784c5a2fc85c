"""Job-side limits against hostile or careless requests: each gets a clear 4xx/5xx JSON answer,
nothing already stored is lost, and the server keeps serving."""

from __future__ import annotations

import asyncio
import resource
from pathlib import Path

from aiohttp.test_utils import TestClient
from conftest import make_style_image
from jobs_helpers import AUTH, TINY_TRAIN, form, jobs_app, jobs_config, submit, wait_job
from media_helpers import make_clip, make_growing_h264, make_h264, make_photo

from server.config import ServerConfig
from server.jobs.params import RenderParams
from server.jobs.store import JobStore

BOUNDARY = "stylefusionboundary"


def _files_left(config: ServerConfig) -> list[Path]:
    return [p for p in (Path(config.data_dir) / "jobs").rglob("*") if p.is_file()]


async def _render(client: TestClient, tmp_path: Path, **fields: str) -> tuple[int, dict]:
    files = {
        "content": make_photo(tmp_path / "photo.jpg", 48, 32),
        "style_image": make_style_image(tmp_path / "style.png", seed=3),
    }
    resp = await client.post("/api/jobs/render", data=form(files, **fields), headers=AUTH)
    return resp.status, await resp.json()


async def _a_finished_render(client: TestClient, tmp_path: Path) -> str:
    status, body = await _render(client, tmp_path, size="32", iterations="2")
    assert status == 202, body
    assert (await wait_job(client, body["id"]))["state"] == "done"
    return body["id"]


async def _still_serves(client: TestClient, kept: str) -> None:
    """The server answers, and the job stored before the hostile requests is intact."""
    resp = await client.get("/api/jobs", headers=AUTH)
    assert resp.status == 200
    assert kept in [j["id"] for j in await resp.json()]
    result = await client.get(f"/api/jobs/{kept}/result", headers=AUTH)
    assert result.status == 200 and len(await result.read()) > 0


async def test_render_settings_the_renderer_refuses_get_422_up_front(
    aiohttp_client, tmp_path: Path, models_dir: Path, content_dir: Path
) -> None:
    config = jobs_config(tmp_path, models_dir, content_dir)
    client = await aiohttp_client(jobs_app(config))
    kept = await _a_finished_render(client, tmp_path)
    cases = [
        ({"size": "16"}, "32 px"),
        ({"iterations": "0"}, "iterations"),
        ({"optimizer": "sgd"}, "lbfgs, adam"),
        ({"size": "abc"}, "'size' must be a whole number"),
        ({"style_weight": "nan"}, "finite"),
        ({"size": "4096"}, "at most 2048"),
    ]
    for fields, words in cases:
        status, body = await _render(client, tmp_path, **fields)
        assert status == 422 and words in body["error"], (fields, body)
    assert [p.parent.name for p in _files_left(config)] == [kept] * len(_files_left(config))
    await _still_serves(client, kept)


async def test_the_job_view_shows_the_library_defaults(
    aiohttp_client, tmp_path: Path, models_dir: Path, content_dir: Path
) -> None:
    from stylefusion.render_config import RenderConfig

    client = await aiohttp_client(jobs_app(jobs_config(tmp_path, models_dir, content_dir)))
    status, body = await _render(client, tmp_path)
    assert status == 202
    await client.post(f"/api/jobs/{body['id']}/cancel", headers=AUTH)
    view = await (await client.get(f"/api/jobs/{body['id']}", headers=AUTH)).json()
    defaults = RenderConfig(Path(), Path(), Path())
    assert view["params"]["size"] == defaults.size
    assert view["params"]["iterations"] == defaults.iterations
    assert view["params"]["optimizer"] == defaults.optimizer


def _multipart_head(fields: dict[str, str], file_field: str) -> bytes:
    """The start of a multipart body: plain fields, then the headers of one file part."""
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
        for k, v in fields.items()
    ]
    parts.append(
        f"--{BOUNDARY}\r\nContent-Disposition: form-data; "
        f'name="{file_field}"; filename="big.mp4"\r\n'
        "Content-Type: video/mp4\r\n\r\n"
    )
    return "".join(parts).encode()


async def _endless_upload(
    client: TestClient, fields: dict[str, str], answered: asyncio.Event
) -> tuple[int, dict, int]:
    """POST a 20 MB clip whose last 19 MB are only sent once the server has answered."""
    sent = 0

    async def body():
        nonlocal sent
        yield _multipart_head(fields, "file")
        for i in range(320):  # 320 x 64 KiB = 20 MiB
            if i == 16:  # 1 MiB in: hold the rest back until the answer is in
                await asyncio.wait_for(answered.wait(), 60)
            sent += 65536
            yield b"\0" * 65536
        yield f"\r\n--{BOUNDARY}--\r\n".encode()

    headers = AUTH | {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    resp = await client.post("/api/jobs/video", data=body(), headers=headers)
    status, answer, when = resp.status, await resp.json(), sent
    return status, answer, when


async def test_bad_fields_before_a_file_refuse_it_before_it_is_stored(
    aiohttp_client, tmp_path: Path, models_dir: Path, content_dir: Path
) -> None:
    config = jobs_config(tmp_path, models_dir, content_dir)
    client = await aiohttp_client(jobs_app(config))
    kept = await _a_finished_render(client, tmp_path)
    before = _files_left(config)
    answered = asyncio.Event()
    # a missing field may still come after the file; a bad, refused or unknown one cannot be cured
    uploads = [
        _endless_upload(client, {"strength": "x"}, answered),  # no style yet, but a bad strength
        _endless_upload(client, {"style": "alpha", "colour": "red"}, answered),
        _endless_upload(client, {"style": "no-such-style"}, answered),
        _endless_upload(client, {"style": "alpha", "strength": "7"}, answered),
    ]
    tasks = [asyncio.ensure_future(u) for u in uploads]
    done, _ = await asyncio.wait(tasks, timeout=60, return_when=asyncio.ALL_COMPLETED)
    answered.set()
    results = [t.result() for t in tasks]
    for (status, answer, sent), words in zip(
        results, ("'strength'", "'colour'", "no-such-style", "strength"), strict=True
    ):
        assert status == 422 and words in answer["error"], answer
        assert sent <= 2**20  # answered while 19 of the 20 MiB were still unsent
    assert _files_left(config) == before
    await _still_serves(client, kept)


async def test_a_running_job_cannot_be_deleted_an_ended_one_goes_with_its_files(
    aiohttp_client, tmp_path: Path, models_dir: Path, content_dir: Path
) -> None:
    config = jobs_config(tmp_path, models_dir, content_dir)
    client = await aiohttp_client(jobs_app(config))
    ended = await _a_finished_render(client, tmp_path)
    style = make_style_image(tmp_path / "painting.png", seed=5)
    long = TINY_TRAIN | {"steps": "100000"}
    running = await submit(client, "train", form({"style_image": style}, name="long", **long))
    await wait_job(client, running, states=("running",))
    refused = await client.delete(f"/api/jobs/{running}", headers=AUTH)
    assert refused.status == 409 and "running" in (await refused.json())["error"]
    assert (Path(config.data_dir) / "jobs" / running).is_dir()
    deleted = await client.delete(f"/api/jobs/{ended}", headers=AUTH)
    assert deleted.status == 200 and (await deleted.json())["id"] == ended
    assert not (Path(config.data_dir) / "jobs" / ended).exists()
    assert (await client.get(f"/api/jobs/{ended}", headers=AUTH)).status == 404
    again = await client.delete(f"/api/jobs/{ended}", headers=AUTH)
    assert again.status == 404 and "error" in await again.json()
    await client.post(f"/api/jobs/{running}/cancel", headers=AUTH)
    assert (await wait_job(client, running))["state"] == "cancelled"
    assert (await client.delete(f"/api/jobs/{running}", headers=AUTH)).status == 200
    assert (await (await client.get("/api/jobs", headers=AUTH)).json()) == []


async def test_uploads_are_refused_with_507_when_the_disk_is_low(
    aiohttp_client, tmp_path: Path, models_dir: Path, content_dir: Path
) -> None:
    config = jobs_config(tmp_path, models_dir, content_dir, min_free_disk_mb=2**40)
    client = await aiohttp_client(jobs_app(config))
    clip = make_clip(tmp_path / "clip.mp4", frames=4, fps=10)
    resp = await client.post(
        "/api/jobs/video", data=form({"file": clip}, style="alpha"), headers=AUTH
    )
    assert resp.status == 507 and "disk" in (await resp.json())["error"]
    assert _files_left(config) == []
    assert (await client.get("/api/jobs", headers=AUTH)).status == 200


async def test_old_ended_jobs_are_swept_at_start(
    aiohttp_client, tmp_path: Path, models_dir: Path, content_dir: Path
) -> None:
    config = jobs_config(tmp_path, models_dir, content_dir, job_retention_days=1)
    store = JobStore(config.data_dir)
    old, fresh = store.create(RenderParams()), store.create(RenderParams())
    for job_id in (old, fresh):
        store.claim(1)
        store.finish(job_id.id, "failed", error="boom")
        store.job_dir(job_id.id).mkdir()
        (store.job_dir(job_id.id) / "content-0.png").write_bytes(b"x")
    with store._connect() as db:
        db.execute("UPDATE jobs SET finished = finished - 2 * 86400 WHERE id = ?", (old.id,))
    client = await aiohttp_client(jobs_app(config))
    for _ in range(400):  # the sweep deletes the row first, then the folder
        jobs = await (await client.get("/api/jobs", headers=AUTH)).json()
        if len(jobs) == 1 and not store.job_dir(old.id).exists():
            break
        await asyncio.sleep(0.05)
    assert [j["id"] for j in jobs] == [fresh.id]
    assert not store.job_dir(old.id).exists() and store.job_dir(fresh.id).is_dir()


async def test_hostile_clips_are_refused_up_front_or_fail_their_job_clearly(
    aiohttp_client, tmp_path: Path, models_dir: Path, content_dir: Path
) -> None:
    config = jobs_config(tmp_path, models_dir, content_dir, max_clip_seconds=8)
    client = await aiohttp_client(jobs_app(config))
    bomb = make_h264(tmp_path / "bomb.h264", frames=1, declared=(16000, 16000))
    assert bomb.stat().st_size < 2000
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB; the server runs here
    resp = await client.post(
        "/api/jobs/video", data=form({"file": bomb}, style="alpha"), headers=AUTH
    )
    answer = await resp.json()
    assert resp.status == 413 and "16000x16000" in answer["error"], answer
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before) / 1024
    assert grown_mib < 200  # one decoded 16000x16000 frame alone would be 366 MiB
    assert _files_left(config) == []
    cases = [
        (make_growing_h264(tmp_path / "grows.h264"), "16000x16000"),
        (make_h264(tmp_path / "long.h264", frames=100, fps=10), "longer than the limit of 8 s"),
    ]
    for clip, words in cases:
        job_id = await submit(client, "video", form({"file": clip}, style="alpha"))
        failed = await wait_job(client, job_id)
        assert failed["state"] == "failed" and words in failed["error"], failed
        assert failed["progress"] < 1
    ok = await submit(
        client, "video", form({"file": make_clip(tmp_path / "ok.mp4")}, style="alpha")
    )
    assert (await wait_job(client, ok))["state"] == "done"


def test_every_job_limit_has_a_flag() -> None:
    from server.__main__ import build_parser, config_from_args

    flags = {
        "--max-clip-seconds": ("max_clip_seconds", 30.0),
        "--max-clip-pixels": ("max_clip_pixels", 640 * 480),
        "--probe-memory-mb": ("probe_memory_mb", 512),
        "--max-render-size": ("max_render_size", 1024),
        "--max-render-iterations": ("max_render_iterations", 100),
        "--max-train-size": ("max_train_size", 512),
        "--min-free-disk-mb": ("min_free_disk_mb", 10),
        "--job-retention-days": ("job_retention_days", 2.0),
    }
    argv = [arg for flag, (_, value) in flags.items() for arg in (flag, str(value))]
    config = config_from_args(build_parser().parse_args(argv))
    assert {field: getattr(config, field) for field, _ in flags.values()} == dict(flags.values())
