"""Background jobs (clips, renders, training) and the admin page: routes, store, runner."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

from aiohttp import web

from stylefusion.content import default_photos_dir
from stylefusion.devices import cpu_count, default_clip_side, default_variant, resolve_device

from ..auth import AdminGuard
from ..config import ServerConfig
from ..errors import ConfigError, NotFound
from ..keys import ADMIN_GUARD, AUDIENCE, CONFIG, JOBS
from .api import JobsApi
from .estimate import StepTimer
from .keys import JOB_RUNNER, JOB_STORE, STEP_TIMER
from .runner import JobRunner
from .store import JobStore
from .training import TrainDefaults, TrainPlanner
from .worker import WorkerSettings

log = logging.getLogger(__name__)

ADMIN_ASSETS = {"admin.js": "application/javascript", "admin.css": "text/css"}


def setup_jobs(app: web.Application) -> None:
    """Add /admin and /api/jobs* (behind ADMIN_GUARD), cleanup contexts for runner and retention.

    New styles go live through the registry's poll of the models dir (works across processes
    and machines sharing that dir), so the runners do not announce them.
    """
    config = app[CONFIG]
    store = JobStore(config.data_dir)
    device = resolve_device(config.device)
    settings = worker_settings(config)
    timer = StepTimer(settings.nice)
    training = (
        TrainDefaults(settings.models_dir, device, default_variant(device)),
        TrainPlanner(settings, timer),
    )
    api = JobsApi(store, config, training, settings.content_dir, default_clip_side(device))
    runner = make_runner(config, store, settings, app)
    api.on_submit = runner.wake
    app[JOB_STORE] = store
    app[JOBS] = store
    app[JOB_RUNNER] = runner
    app[STEP_TIMER] = timer
    _add_routes(app, api, app[ADMIN_GUARD], Path(config.web_dir))
    app.cleanup_ctx.append(_runner_ctx)
    app.cleanup_ctx.append(_retention_ctx)
    app.cleanup_ctx.append(_timer_ctx)


def make_runner(
    config: ServerConfig, store: JobStore, settings: WorkerSettings, app: web.Application
) -> JobRunner:
    """The job runner of the configured backend: a local worker process, or Ray actors."""
    hooks = {"live_peers": partial(_live_peers, app)}
    if config.jobs_backend == "ray":
        try:
            from .ray_backend import RayRunner  # ray is an optional extra, imported only here
        except ImportError as exc:
            msg = f"--jobs-backend ray needs Ray: pip install -e '.[cluster]' ({exc})"
            raise ConfigError(msg) from None

        return RayRunner(  # type: ignore[return-value]  # same start/stop/wake interface
            store, settings, config.max_jobs, config.ray_address, config.job_gpus, **hooks
        )
    return JobRunner(store, settings, workers=config.max_jobs, **hooks)


def worker_settings(config: ServerConfig) -> WorkerSettings:
    """Worker settings: same dirs and device, half the CPU cores at most, lowest priority."""
    content = config.content_dir or default_photos_dir()
    return WorkerSettings(
        data_dir=Path(config.data_dir).resolve(),
        models_dir=Path(config.models_dir).resolve(),
        device=config.device,
        threads=max(1, cpu_count() // 2),
        content_dir=Path(content).resolve(),
        clip_seconds=config.max_clip_seconds,
        clip_pixels=config.max_clip_pixels,
    )


def _add_routes(app: web.Application, api: JobsApi, guard: AdminGuard, web_dir: Path) -> None:
    app.router.add_get("/admin", partial(_admin_page, web_dir))
    app.router.add_get("/admin/{asset}", partial(_admin_asset, web_dir))
    app.router.add_get("/api/jobs", guard(api.list_jobs))
    app.router.add_post("/api/jobs/video", guard(api.submit_video))
    app.router.add_post("/api/jobs/render", guard(api.submit_render))
    app.router.add_post("/api/jobs/train", guard(api.submit_train))
    app.router.add_get("/api/train/estimate", guard(api.estimate_train))
    app.router.add_get("/api/jobs/{id}", guard(api.get_job))
    app.router.add_get("/api/jobs/{id}/result", guard(api.result))
    app.router.add_get("/api/jobs/{id}/preview", guard(api.preview))
    app.router.add_post("/api/jobs/{id}/cancel", guard(api.cancel))
    app.router.add_delete("/api/jobs/{id}", guard(api.delete))


async def _admin_page(web_dir: Path, request: web.Request) -> web.StreamResponse:
    """GET /admin: the admin page."""
    return web.FileResponse(web_dir / "admin.html", headers={"Cache-Control": "no-cache"})


async def _admin_asset(web_dir: Path, request: web.Request) -> web.StreamResponse:
    """GET /admin/admin.js and /admin/admin.css."""
    asset = request.match_info["asset"]
    if asset not in ADMIN_ASSETS:
        raise NotFound("not found")
    return web.FileResponse(
        web_dir / asset,
        headers={"Content-Type": ADMIN_ASSETS[asset], "Cache-Control": "no-cache"},
    )


async def _retention_ctx(app: web.Application) -> AsyncIterator[None]:
    """Remove ended jobs older than --job-retention-days at start, then periodically."""
    config, store = app[CONFIG], app[JOB_STORE]
    max_age_s = config.job_retention_days * 86400

    async def sweep_forever() -> None:
        while True:
            try:
                removed = await asyncio.to_thread(store.sweep, max_age_s)
            except Exception:
                log.exception("job retention sweep failed")
            else:
                if removed:
                    log.info("retention: removed %d ended job(s)", removed)
            await asyncio.sleep(config.retention_sweep_s)

    task = asyncio.create_task(sweep_forever(), name="job-retention")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _runner_ctx(app: web.Application) -> AsyncIterator[None]:
    runner = app[JOB_RUNNER]
    await runner.start()
    yield
    await runner.stop()


async def _timer_ctx(app: web.Application) -> AsyncIterator[None]:
    """Stop the step-timing child process (if one was started) with the app."""
    yield
    app[STEP_TIMER].close()


def _live_peers(app: web.Application) -> int:
    audience = app.get(AUDIENCE)
    return len(audience) if audience is not None else 0
