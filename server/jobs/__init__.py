"""Background jobs (clips, renders, training) and the admin page: routes, store, runner."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

from aiohttp import web

from stylefusion.devices import cpu_count, default_variant, resolve_device

from ..config import ServerConfig
from ..keys import ADMIN_TOKEN, CONFIG, JOB_RUNNER, JOB_STORE, PEERS, REGISTRY
from .api import JobsApi, error
from .auth import load_token, require_token
from .runner import JobRunner
from .store import JobStore
from .uploads import UploadLimits
from .worker import WorkerSettings

log = logging.getLogger(__name__)

ADMIN_ASSETS = {"admin.js": "application/javascript", "admin.css": "text/css"}


def setup_jobs(app: web.Application) -> None:
    """Add /admin and /api/jobs* to the app, and a cleanup context running the job worker."""
    config = app[CONFIG]
    store = JobStore(config.data_dir)
    token = load_token(config.admin_token, config.data_dir)
    variant = default_variant(resolve_device(config.device))
    settings = worker_settings(config)
    api = JobsApi(store, config.models_dir, upload_limits(config), variant, settings.content_dir)
    runner = make_runner(config, store, settings, app)
    api.on_submit = runner.wake
    app[JOB_STORE] = store
    app[ADMIN_TOKEN] = token
    app[JOB_RUNNER] = runner
    _add_routes(app, api, token, Path(config.web_dir))
    app.cleanup_ctx.append(_runner_ctx)


def make_runner(
    config: ServerConfig, store: JobStore, settings: WorkerSettings, app: web.Application
) -> JobRunner:
    """The job runner of the configured backend: a local worker process, or Ray actors."""
    hooks = {"on_style": partial(_rescan, app), "live_peers": partial(_live_peers, app)}
    if config.jobs_backend == "ray":
        from .ray_backend import RayRunner  # ray is an optional extra, imported only here

        return RayRunner(  # type: ignore[return-value]  # same start/stop/wake interface
            store, settings, config.max_jobs, config.ray_address, config.job_gpus, **hooks
        )
    return JobRunner(store, settings, workers=config.max_jobs, **hooks)


def upload_limits(config: ServerConfig) -> UploadLimits:
    """Upload limits from the server config (extra fields are optional)."""
    defaults = UploadLimits()
    return UploadLimits(
        clip_bytes=config.max_clip_bytes,
        image_bytes=config.max_image_bytes,
        clip_seconds=getattr(config, "max_clip_seconds", defaults.clip_seconds),
        clip_pixels=getattr(config, "max_clip_pixels", defaults.clip_pixels),
    )


def worker_settings(config: ServerConfig) -> WorkerSettings:
    """Worker settings: same dirs and device, half the CPU cores at most, lowest priority."""
    content = config.content_dir or Path(config.data_dir) / "content"
    return WorkerSettings(
        data_dir=Path(config.data_dir).resolve(),
        models_dir=Path(config.models_dir).resolve(),
        device=config.device,
        threads=max(1, cpu_count() // 2),
        content_dir=Path(content).resolve(),
        checkpoint_every_s=getattr(config, "checkpoint_every_s", 30.0),
    )


def _add_routes(app: web.Application, api: JobsApi, token: str, web_dir: Path) -> None:
    guard = partial(require_token, token)
    app.router.add_get("/admin", partial(_admin_page, web_dir))
    app.router.add_get("/admin/{asset}", partial(_admin_asset, web_dir))
    app.router.add_get("/api/jobs", guard(api.list_jobs))
    app.router.add_post("/api/jobs/video", guard(api.submit_video))
    app.router.add_post("/api/jobs/render", guard(api.submit_render))
    app.router.add_post("/api/jobs/train", guard(api.submit_train))
    app.router.add_get("/api/jobs/{id}", guard(api.get_job))
    app.router.add_get("/api/jobs/{id}/result", guard(api.result))
    app.router.add_get("/api/jobs/{id}/preview", guard(api.preview))
    app.router.add_post("/api/jobs/{id}/cancel", guard(api.cancel))


async def _admin_page(web_dir: Path, request: web.Request) -> web.StreamResponse:
    """GET /admin: the admin page."""
    return web.FileResponse(web_dir / "admin.html", headers={"Cache-Control": "no-cache"})


async def _admin_asset(web_dir: Path, request: web.Request) -> web.StreamResponse:
    """GET /admin/admin.js and /admin/admin.css."""
    asset = request.match_info["asset"]
    if asset not in ADMIN_ASSETS:
        return error(404, "not found")
    return web.FileResponse(
        web_dir / asset,
        headers={"Content-Type": ADMIN_ASSETS[asset], "Cache-Control": "no-cache"},
    )


async def _runner_ctx(app: web.Application) -> AsyncIterator[None]:
    runner = app[JOB_RUNNER]
    await runner.start()
    yield
    await runner.stop()


async def _rescan(app: web.Application, name: str) -> None:
    """A training job finished: let the live registry pick the new style up now."""
    registry = app.get(REGISTRY)
    if registry is not None:
        log.info("style %s trained; rescanning the registry", name)
        await registry.rescan()


def _live_peers(app: web.Application) -> int:
    peers = app.get(PEERS)
    try:
        return len(peers) if peers is not None else 0  # type: ignore[arg-type]
    except TypeError:
        return 0
