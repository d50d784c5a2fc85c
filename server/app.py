"""The application factory: routes, shared objects on AppKeys, long-lived resources."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware

from stylefusion.devices import configure_torch, cpu_count, resolve_device

from . import signalling, styles_api, warmup
from .batcher import Batcher
from .budget import BudgetPlanner, CostModel
from .config import ServerConfig
from .jobs import setup_jobs
from .keys import BATCHER, BUDGET, CONFIG, JOB_STORE, METRICS, PEERS, READY, REGISTRY
from .metrics import Metrics
from .middleware import error_middleware, host_middleware, host_name, pass_through
from .peers import PeerSet
from .registry import StyleRegistry
from .style_admin import setup_style_admin

log = logging.getLogger(__name__)

NO_CACHE = {"Cache-Control": "no-cache"}
WILDCARD_HOSTS = ("0.0.0.0", "::", "")
GIL_SWITCH_INTERVAL_S = 0.0002


def create_app(config: ServerConfig) -> web.Application:
    """Build the aiohttp app: live page, signalling, styles, metrics, and the jobs API."""
    # default 1 MiB body limit: /offer reads at most max_offer_bytes, job uploads are streamed
    app = web.Application(middlewares=[error_middleware, host_check(config)])
    metrics = Metrics()
    registry = StyleRegistry(
        config.models_dir,
        resolve_device(config.device),
        config.variant,
        compile=config.compile,
        precision=config.precision,
    )
    planner = BudgetPlanner(CostModel())
    batcher = Batcher(
        registry.stylizer,
        config.max_batch,
        config.max_wait_ms / 1000,
        metrics,
        costs=planner.costs,
        fit=lambda width, height: planner.current.fit(width, height),
    )
    app[CONFIG], app[METRICS], app[REGISTRY], app[BUDGET] = config, metrics, registry, planner
    app[BATCHER], app[PEERS] = batcher, PeerSet(config.max_peers, batcher, metrics, planner)
    app[READY] = asyncio.Event()
    app.cleanup_ctx.append(live_context)
    add_routes(app, config)
    if config.role != "live":  # a live-only node leaves admin work to the node with the store
        setup_jobs(app)
        setup_style_admin(app, registry)
    return app


def host_check(config: ServerConfig) -> Middleware:
    """The Host middleware: the bind address, localhost and --allowed-host names answer.

    Bound to a wildcard address, any IP-literal Host is fine too: DNS rebinding always
    arrives under a name. `--allowed-host '*'` turns the check off.
    """
    allowed = {config.host, "localhost", "127.0.0.1", "::1", *config.allowed_hosts}
    names = frozenset(host_name(h) for h in allowed)
    if "*" in names:
        return pass_through
    return host_middleware(names, any_ip=config.host in WILDCARD_HOSTS)


def runner_options(config: ServerConfig) -> dict[str, Any]:
    """aiohttp runner settings that cut slow clients off.

    aiohttp's keep-alive timer runs from the moment a connection opens and closes it if no
    complete request has arrived, so it doubles as the request-header read timeout; an
    unread body after the answer is drained for at most body_timeout_s.
    """
    return {"keepalive_timeout": config.header_timeout_s, "lingering_time": config.body_timeout_s}


def add_routes(app: web.Application, config: ServerConfig) -> None:
    """The live server's routes (the jobs API adds its own)."""
    app.router.add_get("/", index)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/api/config", page_config)
    app.router.add_get("/api/styles", styles_api.list_styles)
    app.router.add_get("/api/styles/{name}/thumbnail", styles_api.thumbnail)
    app.router.add_post("/offer", signalling.offer)
    app.router.add_static("/static/", config.web_dir, append_version=False)


async def live_context(app: web.Application) -> AsyncIterator[None]:
    """Load every style, start the inference thread and polling; close all peers on exit."""
    config, metrics = app[CONFIG], app[METRICS]
    registry, batcher, peers = app[REGISTRY], app[BATCHER], app[PEERS]

    def announce(styles: object) -> None:
        metrics.styles_loaded.set(len(registry.loaded()))
        peers.fall_back(registry, registry.default)  # viewers of a removed style move on
        peers.broadcast({"event": "styles", **styles_api.styles_payload(registry)})

    registry.on_change(announce)
    # the inference thread releases the GIL around every torch op; while the event loop or the
    # compile thread runs Python it waits up to the switch interval (5 ms by default) to take it
    # back, at every op: an eager lite frame went from 125 to 535 ms beside one busy Python
    # thread (148 ms at 0.2 ms, 2-core AMD EPYC)
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    # leave a core to the event loop and the video codecs, which run beside the model
    configure_torch(
        config.threads or max(1, cpu_count() - 1),
        config.data_dir / "torch-cache",
        compile_in_thread=registry.device.type == "cpu",
    )
    await registry.rescan()
    default = registry.default
    stylizers = [s.stylizer for s in sorted(registry.loaded(), key=lambda s: s.name != default)]

    async def warm_up() -> None:
        # start-up compiles at full speed; once viewers can come, compiling yields to them
        await asyncio.to_thread(
            warmup.prepare, stylizers, app[BUDGET], config.max_peers, config.max_batch
        )
        if registry.compiler is not None:
            registry.compiler.lower_priority()
        batcher.start()
        app[READY].set()
        log.info("serving %d style(s) on %s", len(registry.loaded()), registry.device)

    tasks = [
        asyncio.create_task(registry.poll(config.rescan_interval_s), name="style-polling"),
        asyncio.create_task(replan(app, config.budget_interval_s), name="budget"),
    ]
    if registry.compiler is None:
        await warm_up()  # eager: a few timed calls
    else:
        # compiling takes seconds warm, minutes cold: meanwhile the pages and the API answer,
        # and /offer says 503 "warming up" (the page retries by itself)
        log.info("compiling for this machine before taking viewers (a minute or more cold)")
        tasks.append(asyncio.create_task(warm_up(), name="warm-up"))
    try:
        yield
    finally:
        registry.close()  # first: a start-up compile under way stops
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await peers.close_all()
        await batcher.stop()


async def replan(app: web.Application, interval_s: float) -> None:
    """Re-plan the send budget as the measured cost changes; tell every page when it does."""
    planner, peers = app[BUDGET], app[PEERS]
    while True:
        await asyncio.sleep(interval_s)
        if planner.update():
            peers.broadcast(planner.current.message())


async def index(request: web.Request) -> web.FileResponse:
    """GET /: the live page."""
    return web.FileResponse(request.app[CONFIG].web_dir / "index.html", headers=NO_CACHE)


async def healthz(request: web.Request) -> web.Response:
    """GET /healthz: status, device, styles, and load against capacity (for balancers)."""
    registry, config = request.app[REGISTRY], request.app[CONFIG]
    peers, ready = len(request.app[PEERS]), request.app[READY].is_set()
    return web.json_response(
        {
            "status": "ok" if ready else "warming_up",
            "device": str(registry.device),
            "variant": registry.preferred_variant,
            "styles": [s.name for s in registry.styles()],
            "peers": peers,
            "max_peers": config.max_peers,
            "load": round(peers / max(1, config.max_peers), 3),
            "at_capacity": peers >= config.max_peers or not ready,
            "role": config.role,
            "jobs": JOB_STORE in request.app,
        }
    )


async def metrics(request: web.Request) -> web.Response:
    """GET /metrics: Prometheus text."""
    registry = request.app[METRICS]
    return web.Response(body=registry.render(), headers={"Content-Type": registry.content_type})


async def page_config(request: web.Request) -> web.Response:
    """GET /api/config: ICE servers and limits for the page."""
    body = signalling.page_config(request.app[CONFIG], request.app[BUDGET].for_newcomer())
    return web.Response(text=body, content_type="application/json")
