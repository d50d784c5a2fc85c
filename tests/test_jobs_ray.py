"""Jobs on a local Ray cluster through the unchanged HTTP API: train, clip, cancel, dead worker."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from cluster_helpers import free_port, start_node, stop, wait_ready
from conftest import make_style_image
from jobs_helpers import AUTH, TINY_TRAIN, TOKEN, form, jobs_app, jobs_config, submit, wait_job
from media_helpers import make_clip, read_clip

from server.jobs.keys import JOB_STORE
from server.jobs.store import JobStore

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow  # a Ray cluster, training actors

from server.jobs.ray_backend import NAMESPACE, actor_name, checkpoint_path  # noqa: E402


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    """A local two-CPU Ray cluster shared by this module's tests."""
    ray.init(num_cpus=2, include_dashboard=False, namespace=NAMESPACE, configure_logging=False)
    yield
    ray.shutdown()


async def _ray_client(aiohttp_client, tmp_path: Path, models_dir: Path, content_dir: Path):
    config = jobs_config(tmp_path, models_dir, content_dir, jobs_backend="ray", max_jobs=2)
    return await aiohttp_client(jobs_app(config, checkpoint_every_s=0.05))


async def _actor_pid_after_checkpoint(client: TestClient, models_dir: Path, job_id: str) -> int:
    """Wait until the training checkpointed in the shared models dir; its actor's pid."""
    store = client.app[JOB_STORE]
    for _ in range(1200):
        job = store.get(job_id)
        assert job is not None and job.state in ("queued", "running"), job
        if checkpoint_path(models_dir, job_id).is_file() and job.progress >= 0.3:
            actor = ray.get_actor(actor_name(job_id), namespace=NAMESPACE)
            return await actor.pid.remote()
        await asyncio.sleep(0.05)
    raise AssertionError("the training never checkpointed")


async def _actor_gone(job_id: str) -> None:
    """Wait until the job's named actor no longer exists."""
    for _ in range(300):
        try:
            ray.get_actor(actor_name(job_id), namespace=NAMESPACE)
        except ValueError:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"the Ray actor of job {job_id} outlived its job")


async def test_train_and_clip_jobs_run_on_ray(
    ray_cluster, aiohttp_client, tmp_path: Path, models_dir: Path, content_dir: Path
) -> None:
    client = await _ray_client(aiohttp_client, tmp_path, models_dir, content_dir)
    painting = make_style_image(tmp_path / "painting.png", seed=5)
    clip = make_clip(tmp_path / "clip.mp4", frames=8, fps=10)
    trained = await submit(
        client, "train", form({"style_image": painting}, name="onray", **TINY_TRAIN)
    )
    video = await submit(client, "video", form({"file": clip}, style="alpha"))
    done = await wait_job(client, trained)
    assert done["state"] == "done", done
    assert done["history"] and "loss" in done["metrics"] and done["preview_url"]
    assert (await client.get(done["preview_url"], headers=AUTH)).status == 200
    meta = await client.get(done["result_url"], headers=AUTH)
    assert json.loads(await meta.read())["name"] == "onray"
    assert (models_dir / "onray" / "lite.safetensors").is_file()
    assert not checkpoint_path(models_dir, trained).exists()  # cleaned up once done
    stylized = await wait_job(client, video)
    assert stylized["state"] == "done", stylized
    out = tmp_path / "out.mp4"
    out.write_bytes(await (await client.get(stylized["result_url"], headers=AUTH)).read())
    assert len(read_clip(out).frames) == len(read_clip(clip).frames)


async def test_cancel_reaches_its_actor_and_a_killed_worker_resumes_from_its_checkpoint(
    ray_cluster, aiohttp_client, tmp_path: Path, models_dir: Path, content_dir: Path
) -> None:
    client = await _ray_client(aiohttp_client, tmp_path, models_dir, content_dir)
    painting = make_style_image(tmp_path / "painting.png", seed=7)
    long = TINY_TRAIN | {"steps": "100000"}
    resumable = TINY_TRAIN | {"steps": "40"}
    long_id = await submit(client, "train", form({"style_image": painting}, name="long", **long))
    kept = await submit(client, "train", form({"style_image": painting}, name="kept", **resumable))

    # a Ray worker dies mid-training: the job is requeued and goes on from its checkpoint
    os.kill(await _actor_pid_after_checkpoint(client, models_dir, kept), signal.SIGKILL)

    # meanwhile the other job trains on its own actor; cancel reaches it there
    running = await wait_job(client, long_id, states=("running",))
    while not running.get("metrics"):  # the actor is training, not just scheduled
        running = await wait_job(client, long_id, states=("running",))
    assert (await client.post(f"/api/jobs/{long_id}/cancel", headers=AUTH)).status == 200
    assert (await wait_job(client, long_id))["state"] == "cancelled"
    assert not (models_dir / "long").exists()
    await _actor_gone(long_id)  # its Ray actor ends too (ray.kill takes a moment)

    done = await wait_job(client, kept)
    assert done["state"] == "done", done
    assert client.app[JOB_STORE].get(kept).attempts == 2  # type: ignore[union-attr]
    steps = [point["step"] for point in done["history"]]
    assert steps.count(1) == 1  # the second worker went on from the checkpoint, not from step 1
    assert steps[-1] == 40 and (models_dir / "kept" / "lite.safetensors").is_file()


async def test_a_restarted_server_reattaches_to_the_ray_actor_still_running_its_job(
    ray_cluster, tmp_path: Path, models_dir: Path, content_dir: Path, monkeypatch
) -> None:
    monkeypatch.setenv("STYLEFUSION_ADMIN_TOKEN", TOKEN)
    port, data_dir = free_port(), tmp_path / "var"
    url = f"http://127.0.0.1:{port}"
    ray_args = ("--jobs-backend", "ray", "--ray-address", ray.get_runtime_context().gcs_address)
    args = (*ray_args, "--content-dir", str(content_dir))
    server = start_node(port, models_dir, data_dir, tmp_path / "first.log", *args).process
    try:
        async with aiohttp.ClientSession() as session:
            await wait_ready(session, url)
            painting = make_style_image(tmp_path / "painting.png", seed=3)
            data = form(
                {"style_image": painting}, name="endless", **TINY_TRAIN | {"steps": "100000"}
            )
            async with session.post(f"{url}/api/jobs/train", data=data, headers=AUTH) as resp:
                job_id = (await resp.json())["id"]
            before = await _training(session, url, job_id, above=0)
            server.kill()  # kill -9: no cleanup; the detached actor trains on
            server.wait(10)
            server = start_node(port, models_dir, data_dir, tmp_path / "second.log", *args).process
            await wait_ready(session, url)
            await _training(session, url, job_id, above=before["progress"])  # reports flow again
            async with session.post(f"{url}/api/jobs/{job_id}/cancel", headers=AUTH) as resp:
                assert resp.status == 200
            while (view := await _view(session, url, job_id))["state"] == "running":
                await asyncio.sleep(0.2)
            assert view["state"] == "cancelled", view
        assert JobStore(data_dir).get(job_id).attempts == 1  # type: ignore[union-attr]
    finally:
        stop(server)


async def _view(session: aiohttp.ClientSession, url: str, job_id: str) -> dict:
    async with session.get(f"{url}/api/jobs/{job_id}", headers=AUTH) as resp:
        return await resp.json()


async def _training(session: aiohttp.ClientSession, url: str, job_id: str, above: float) -> dict:
    """Wait until the job runs with progress beyond `above`; its JSON."""
    for _ in range(1200):
        view = await _view(session, url, job_id)
        assert view["state"] in ("queued", "running"), view
        if view["state"] == "running" and view["progress"] > above:
            return view
        await asyncio.sleep(0.1)
    raise AssertionError(f"job {job_id} made no progress past {above}")
