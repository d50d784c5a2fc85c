"""Nothing lost: a killed worker or a kill -9 of the whole server loses no job."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
import torch
from aiohttp.test_utils import TestClient
from conftest import make_style_image
from jobs_helpers import AUTH, TINY_TRAIN, form, jobs_app, jobs_config, submit, wait_job
from safetensors.torch import load_file

from server.jobs.keys import JOB_STORE
from server.jobs.store import JobStore

pytestmark = pytest.mark.slow  # trainings killed and resumed, server processes

RESUMABLE = TINY_TRAIN | {"steps": "40"}


async def _running_with_checkpoint(client: TestClient, job_id: str) -> int:
    """Wait until the job has written a checkpoint and made more progress; its worker pid."""
    store = client.app[JOB_STORE]
    checkpoint = store.job_dir(job_id) / "checkpoint.pt"
    for _ in range(1200):
        job = store.get(job_id)
        assert job is not None and job.state in ("queued", "running"), job
        if job.state == "running" and checkpoint.is_file() and job.progress >= 0.3:
            assert job.worker_pid is not None
            return job.worker_pid
        await asyncio.sleep(0.05)
    raise AssertionError("the training never checkpointed")


async def test_killed_worker_resumes_training_to_the_same_weights(
    aiohttp_client, tmp_path: Path, models_dir: Path, content_dir: Path
) -> None:
    config = jobs_config(tmp_path, models_dir, content_dir)
    client = await aiohttp_client(jobs_app(config, checkpoint_every_s=0.05))
    painting = make_style_image(tmp_path / "painting.png", seed=7)
    killed = await submit(
        client, "train", form({"style_image": painting}, name="killed", **RESUMABLE)
    )
    pid = await _running_with_checkpoint(client, killed)
    os.kill(pid, signal.SIGKILL)
    done = await wait_job(client, killed)
    assert done["state"] == "done", done
    assert client.app[JOB_STORE].get(killed).attempts == 2  # type: ignore[union-attr]
    straight = await submit(
        client, "train", form({"style_image": painting}, name="straight", **RESUMABLE)
    )
    assert (await wait_job(client, straight))["state"] == "done"
    resumed = load_file(models_dir / "killed" / "lite.safetensors")
    uninterrupted = load_file(models_dir / "straight" / "lite.safetensors")
    assert resumed.keys() == uninterrupted.keys()
    for key, tensor in uninterrupted.items():
        assert torch.equal(resumed[key], tensor), key


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_server(models_dir: Path, data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    args = ["--models-dir", str(models_dir), "--data-dir", str(data_dir), "--port", str(port)]
    env = os.environ | {"STYLEFUSION_ADMIN_TOKEN": AUTH["Authorization"].split()[1]}
    return subprocess.Popen(
        [sys.executable, "-m", "server", "--device", "cpu", "--no-compile", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\tZ" not in status.split("State:")[1].splitlines()[0]  # a zombie is dead


async def _gone(pid: int | None) -> None:
    assert pid is not None
    for _ in range(100):
        if not _alive(pid):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"worker {pid} outlived the server")


async def _get(session: aiohttp.ClientSession, url: str) -> dict:
    for _ in range(600):
        try:
            async with session.get(url, headers=AUTH) as resp:
                return await resp.json()
        except aiohttp.ClientConnectionError:
            await asyncio.sleep(0.1)
    raise AssertionError(f"server never answered {url}")


@pytest.mark.timeout(180)
async def test_kill_9_of_the_server_loses_no_job(
    tmp_path: Path, models_dir: Path, content_dir: Path
) -> None:
    data_dir = tmp_path / "var"
    shutil.copytree(content_dir, data_dir / "content")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    server = _start_server(models_dir, data_dir, port)
    try:
        async with aiohttp.ClientSession() as session:
            await _get(session, f"{base}/api/jobs")
            painting = make_style_image(tmp_path / "painting.png", seed=7)
            data = form({"style_image": painting}, name="survivor", **TINY_TRAIN | {"steps": "30"})
            async with session.post(f"{base}/api/jobs/train", data=data, headers=AUTH) as resp:
                job_id = (await resp.json())["id"]
            while (await _get(session, f"{base}/api/jobs/{job_id}"))["state"] != "running":
                await asyncio.sleep(0.05)
            worker_pid = JobStore(data_dir).get(job_id).worker_pid  # type: ignore[union-attr]
            server.kill()  # kill -9: no cleanup at all
            server.wait()
            await _gone(worker_pid)  # the orphaned worker must not keep training
            server = _start_server(models_dir, data_dir, port)
            view = await _get(session, f"{base}/api/jobs/{job_id}")
            assert view["state"] in ("queued", "running", "done")
            while view["state"] not in ("done", "failed", "cancelled"):
                await asyncio.sleep(0.1)
                view = await _get(session, f"{base}/api/jobs/{job_id}")
            assert view["state"] == "done", view
            for _ in range(100):  # the registry picks the new style up within a second or two
                styles = await _get(session, f"{base}/api/styles")
                if "survivor" in [s["name"] for s in styles["styles"]]:
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError(f"trained style never went live: {styles}")
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
