"""Helpers for the job tests: a config with tmp dirs, multipart forms, waiting for jobs."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient

from server.app import setup_guards
from server.config import ServerConfig
from server.jobs import setup_jobs
from server.jobs.keys import JOB_RUNNER
from server.keys import CONFIG
from server.middleware import error_middleware

TOKEN = "test-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FINAL = ("done", "failed", "cancelled")
# a training run that takes a second or two on one CPU thread (the painting's Grams at its
# default 512 px took another 4 s of a quiet core, minutes of a loaded box's niced worker)
TINY_TRAIN = {"steps": "4", "size": "32", "batch_size": "2", "variant": "lite", "style_size": "64"}


def jobs_config(
    tmp_path: Path, models_dir: Path, content_dir: Path, **changes: Any
) -> ServerConfig:
    """A CPU server config whose data dir holds a copy of the tiny content photos."""
    data_dir = tmp_path / "var"
    shutil.copytree(content_dir, data_dir / "content")
    fields = {
        "models_dir": models_dir,
        "data_dir": data_dir,
        "content_dir": data_dir / "content",
        "device": "cpu",
        "admin_token": TOKEN,
    }
    # the 401 tests send many wrong tokens in a row: throttling is tested on its own
    return ServerConfig(**(fields | {"compile": False, "admin_failures": 1000} | changes))


def jobs_app(config: ServerConfig, checkpoint_every_s: float | None = None) -> web.Application:
    """An app with only the job routes (the live parts are tested elsewhere)."""
    app = web.Application(middlewares=[error_middleware])
    app[CONFIG] = config
    setup_guards(app)
    setup_jobs(app)
    if checkpoint_every_s is not None:
        tune_worker(app, checkpoint_every_s=checkpoint_every_s)
    return app


class HeldRunner:
    """A job runner that never starts a job: what is queued stays queued (a busy worker)."""

    async def start(self) -> None:
        """Nothing to start."""

    async def stop(self) -> None:
        """Nothing to stop."""

    def wake(self) -> None:
        """Jobs are not run."""


def hold_queue(app: web.Application) -> web.Application:
    """Keep an app's jobs queued (call before it starts)."""
    app[JOB_RUNNER] = HeldRunner()  # type: ignore[assignment]
    return app


def tune_worker(app: web.Application, **changes: Any) -> None:
    """Change the worker settings of an app that has not started yet."""
    runner = app[JOB_RUNNER]
    runner.settings = dataclasses.replace(runner.settings, **changes)


def form(files: dict[str, Path | list[Path]] | None = None, **fields: str) -> aiohttp.FormData:
    """A multipart form with plain fields and file fields (a list means several files)."""
    data = aiohttp.FormData()
    for name, value in fields.items():
        data.add_field(name, value)
    for name, paths in (files or {}).items():
        for path in paths if isinstance(paths, list) else [paths]:
            data.add_field(name, path.read_bytes(), filename=path.name)
    return data


async def submit(client: TestClient, kind: str, data: aiohttp.FormData) -> str:
    """POST a job and return its id (asserting 202)."""
    resp = await client.post(f"/api/jobs/{kind}", data=data, headers=AUTH)
    body = await resp.json()
    assert resp.status == 202, body
    return body["id"]


async def job(client: TestClient, job_id: str) -> dict[str, Any]:
    """GET one job's JSON."""
    resp = await client.get(f"/api/jobs/{job_id}", headers=AUTH)
    assert resp.status == 200
    return await resp.json()


async def wait_job(
    client: TestClient, job_id: str, states: tuple[str, ...] = FINAL, timeout: float = 120
) -> dict[str, Any]:
    """Poll a job until it reaches one of `states`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        view = await job(client, job_id)
        if view["state"] in states:
            return view
        assert loop.time() < deadline, f"job stuck: {view}"
        await asyncio.sleep(0.1)
