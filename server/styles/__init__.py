"""The styles room: the registry of loaded styles, the style catalogue API, style management."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web

from stylefusion.devices import resolve_device

from ..keys import ADMIN_GUARD, AUDIENCE, CONFIG, JOBS, METRICS, STYLES
from . import api
from .admin import StyleAdmin
from .keys import REGISTRY
from .registry import StyleRegistry


def setup_styles(app: web.Application) -> None:
    """Create the registry (on REGISTRY, and on STYLES for the other rooms), add /api/styles."""
    config = app[CONFIG]
    registry = StyleRegistry(
        config.models_dir,
        resolve_device(config.device),
        config.variant,
        compile=config.compile,
        precision=config.precision,
    )
    app[REGISTRY] = registry
    app[STYLES] = registry
    app.router.add_get("/api/styles", api.list_styles)
    app.router.add_get("/api/styles/{name}/thumbnail", api.thumbnail)
    app.cleanup_ctx.append(registry_context)


def setup_style_admin(app: web.Application) -> None:
    """Add the style management routes (after the admin guard and the job store are set)."""
    StyleAdmin(app[REGISTRY], app.get(JOBS)).add_routes(app, app[ADMIN_GUARD])


async def registry_context(app: web.Application) -> AsyncIterator[None]:
    """Load every style, then poll the models dir; viewers hear of every change."""
    config, metrics, registry = app[CONFIG], app[METRICS], app[REGISTRY]

    def announce(styles: object) -> None:
        metrics.styles_loaded.set(len(registry.loaded()))
        audience = app.get(AUDIENCE)
        if audience is not None:
            audience.fall_back(registry, registry.default)  # viewers of a removed style move on
            audience.broadcast({"event": "styles", **api.styles_payload(registry)})

    registry.on_change(announce)
    await registry.rescan()
    poll = asyncio.create_task(registry.poll(config.rescan_interval_s), name="style-polling")
    try:
        yield
    finally:
        registry.close()  # builds under way stop (a start-up warm-up waiting on them ends)
        poll.cancel()
        await asyncio.gather(poll, return_exceptions=True)
