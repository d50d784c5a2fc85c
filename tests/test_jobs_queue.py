"""Queue and settings limits: the queue is capped in all and per client (429), the job list
pages (every job reachable), training budgets are capped (422)."""

from __future__ import annotations

from pathlib import Path

from aiohttp.test_utils import TestClient
from conftest import make_style_image
from jobs_helpers import AUTH, TINY_TRAIN, form, hold_queue, jobs_app, jobs_config
from media_helpers import make_photo

from server.jobs.keys import JOB_STORE
from server.jobs.params import RenderParams


def _render_form(tmp_path: Path):
    files = {
        "content": make_photo(tmp_path / "photo.jpg", 48, 32),
        "style_image": make_style_image(tmp_path / "style.png", seed=3),
    }
    return form(files, size="32", iterations="2")


async def _render(client: TestClient, tmp_path: Path, forwarded_for: str | None = None):
    headers = AUTH | ({"X-Forwarded-For": forwarded_for} if forwarded_for else {})
    resp = await client.post("/api/jobs/render", data=_render_form(tmp_path), headers=headers)
    return resp, await resp.json()


def _folders(config) -> set[str]:
    return {p.name for p in (Path(config.data_dir) / "jobs").iterdir()}


async def test_the_queue_is_capped_in_all_and_per_client(
    aiohttp_client, tmp_path: Path, models_dir: Path, content_dir: Path
) -> None:
    config = jobs_config(
        tmp_path,
        models_dir,
        content_dir,
        max_queued_jobs=5,
        max_queued_jobs_per_client=3,
        trusted_proxies=("127.0.0.1/32",),
    )
    client = await aiohttp_client(hold_queue(jobs_app(config)))
    mine = []
    for _ in range(3):
        resp, body = await _render(client, tmp_path)
        assert resp.status == 202, body
        mine.append(body["id"])
    resp, body = await _render(client, tmp_path)
    assert resp.status == 429 and "your jobs" in body["error"]
    assert int(resp.headers["Retry-After"]) >= 1
    for _ in range(2):  # another client behind the trusted proxy has its own share
        resp, body = await _render(client, tmp_path, "198.51.100.2")
        assert resp.status == 202, body
    resp, body = await _render(client, tmp_path, "198.51.100.3")
    assert resp.status == 429 and "queue is full" in body["error"]
    assert _folders(config) == {j["id"] for j in await _list(client)}  # no refused upload kept
    await client.post(f"/api/jobs/{mine[0]}/cancel", headers=AUTH)  # a cancelled job leaves
    resp, body = await _render(client, tmp_path)
    assert resp.status == 202, body


async def _list(client: TestClient, query: str = "") -> list[dict]:
    resp = await client.get(f"/api/jobs{query}", headers=AUTH)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def test_the_job_list_pages_newest_first_and_reaches_every_job(
    aiohttp_client, tmp_path: Path, models_dir: Path, content_dir: Path
) -> None:
    app = hold_queue(jobs_app(jobs_config(tmp_path, models_dir, content_dir)))
    client = await aiohttp_client(app)
    store = app[JOB_STORE]
    made = [store.create(RenderParams()) for _ in range(205)]
    newest_first = [j.id for j in sorted(made, key=lambda j: (j.created, j.id), reverse=True)]
    first = await client.get("/api/jobs", headers=AUTH)
    page = await first.json()
    assert [j["id"] for j in page] == newest_first[:200]  # the admin page's default page
    seen, link = [], first.headers["Link"]
    while True:
        url = link.split(";")[0].strip("<>")
        resp = await client.get(url, headers=AUTH)
        seen += [j["id"] for j in await resp.json()]
        if "Link" not in resp.headers:
            break
        link = resp.headers["Link"]
    assert seen == newest_first[200:]
    small = await client.get("/api/jobs?limit=2", headers=AUTH)
    assert [j["id"] for j in await small.json()] == newest_first[:2]
    assert f"before={newest_first[1]}&limit=2" in small.headers["Link"]
    when = made[10].created  # a time works as the cursor too
    older = await _list(client, f"?before={when}&limit=200")
    assert [j["id"] for j in older] == [j.id for j in reversed(made[:10])]
    for bad in ("?limit=0", "?limit=201", "?limit=x", "?before=nope", "?before=nan"):
        resp = await client.get(f"/api/jobs{bad}", headers=AUTH)
        assert resp.status == 422, bad


async def test_training_budgets_and_batches_are_capped(
    aiohttp_client, tmp_path: Path, models_dir: Path, content_dir: Path
) -> None:
    config = jobs_config(tmp_path, models_dir, content_dir)
    client = await aiohttp_client(hold_queue(jobs_app(config)))
    painting = make_style_image(tmp_path / "painting.png", seed=4)
    cases = [
        ({"batch_size": "100000"}, "'batch_size' must be at most 64"),
        ({"steps": "1000000000"}, "'steps' must be at most 100000"),
        ({"seconds": "1e9", "steps": ""}, "'seconds' must be at most 86400"),
        ({"size": "2048"}, "'size' must be at most 1024"),
    ]
    for changes, words in cases:
        fields = {k: v for k, v in (TINY_TRAIN | changes).items() if v}
        resp = await client.post(
            "/api/jobs/train",
            data=form({"style_image": painting}, name="big", **fields),
            headers=AUTH,
        )
        body = await resp.json()
        assert resp.status == 422 and words in body["error"], (changes, body)
    fields = TINY_TRAIN | {"steps": "100000", "batch_size": "64"}  # at the caps: fine
    resp = await client.post(
        "/api/jobs/train", data=form({"style_image": painting}, name="ok", **fields), headers=AUTH
    )
    assert resp.status == 202, await resp.json()


def test_the_queue_and_training_flags_reach_the_config_and_the_help() -> None:
    from server.__main__ import build_parser, config_from_args

    flags = {
        "--max-queued-jobs": ("max_queued_jobs", 7),
        "--max-queued-jobs-per-client": ("max_queued_jobs_per_client", 3),
        "--max-train-batch": ("max_train_batch", 16),
        "--max-train-steps": ("max_train_steps", 5000),
        "--max-train-seconds": ("max_train_seconds", 600.0),
    }
    parser = build_parser()
    argv = [arg for flag, (_, value) in flags.items() for arg in (flag, str(value))]
    config = config_from_args(parser.parse_args(argv))
    assert {field: getattr(config, field) for field, _ in flags.values()} == dict(flags.values())
    assert all(flag in parser.format_help() for flag in flags)
