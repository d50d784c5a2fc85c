"""The application factory: routes, shared objects on AppKeys, long-lived resources."""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware

from stylefusion.devices import configure_torch, cpu_count, resolve_device

from .access_log import PollsAtDebug
from .auth import AdminGuard, FailureThrottle, TokenGuard, checked, load_token
from .config import ServerConfig
from .jobs import setup_jobs
from .keys import (
    ADMIN_GUARD,
    ADMIN_TOKEN,
    CONFIG,
    JOBS,
    METRICS,
    PUBLISH_GUARD,
    WATCH_GUARD,
)
from .live import setup_live
from .live.keys import PEERS
from .live.peers import DROP_REASONS, REFUSE_REASONS
from .metrics import Metrics
from .middleware import error_middleware, host_middleware, host_name, pass_through
from .request_log import RequestLog
from .styles import setup_style_admin, setup_styles
from .styles.keys import REGISTRY

log = logging.getLogger(__name__)

NO_CACHE = {"Cache-Control": "no-cache"}
WILDCARD_HOSTS = ("0.0.0.0", "::", "")
GIL_SWITCH_INTERVAL_S = 0.0002


def create_app(config: ServerConfig) -> web.Application:
    """Build the aiohttp app: the frame (pages, health, metrics) and its rooms.

    The rooms: styles (the registry, /api/styles), live (WebRTC, batcher, budget) and, unless
    this is a live-only node, jobs (/admin, /api/jobs) and style management.
    """
    # default 1 MiB body limit: /offer reads at most max_offer_bytes, job uploads are streamed;
    # requests that do not even parse are logged in one line (no traceback quoting headers)
    app = web.Application(
        middlewares=[error_middleware, host_check(config)],
        handler_args={"logger": RequestLog()},
    )
    app[CONFIG], app[METRICS] = config, Metrics()
    app.cleanup_ctx.append(runtime_context)  # first: threads and caches before any model loads
    add_routes(app, config)
    setup_guards(app)
    setup_styles(app)
    setup_live(app)
    if config.role != "live":  # a live-only node leaves admin work to the node with the store
        setup_jobs(app)
        setup_style_admin(app)
    return app


def setup_guards(app: web.Application) -> None:
    """The tokens and their guards: admin (jobs, styles), publish (WHIP), watch (WHEP, if set).

    Each guard also takes the stronger tokens (the admin token publishes and watches). One
    failure throttle serves them all, so a second token is no second budget of guesses.
    """
    config = app[CONFIG]
    admin = load_token(config.admin_token, config.data_dir)
    publish = config.publish_token and checked(
        config.publish_token, "--publish-token", "the publish token"
    )
    watch = config.watch_token and checked(config.watch_token, "--watch-token", "the watch token")
    throttle = FailureThrottle(config.admin_failures, config.admin_failure_window_s)
    proxies = config.trusted_proxies
    app[ADMIN_TOKEN] = admin
    app[ADMIN_GUARD] = AdminGuard(admin, throttle, proxies)
    publishers = distinct(publish, admin)
    app[PUBLISH_GUARD] = TokenGuard(publishers, throttle, proxies, "publish token")
    watchers = distinct(watch, *publishers) if watch else ()
    app[WATCH_GUARD] = TokenGuard(watchers, throttle, proxies, "watch token") if watch else None


def distinct(*tokens: str | None) -> tuple[str, ...]:
    """The tokens given, each once, in order."""
    return tuple(dict.fromkeys(t for t in tokens if t))


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
    """aiohttp runner settings: slow clients cut off, routine polls logged at DEBUG.

    aiohttp's keep-alive timer runs from the moment a connection opens and closes it if no
    complete request has arrived, so it doubles as the request-header read timeout; an
    unread body after the answer is drained for at most body_timeout_s.
    """
    return {
        "keepalive_timeout": config.header_timeout_s,
        "lingering_time": config.body_timeout_s,
        "access_log_class": PollsAtDebug,
    }


def add_routes(app: web.Application, config: ServerConfig) -> None:
    """The frame's routes (each room adds its own)."""
    app.router.add_get("/", index)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_static("/static/", config.web_dir, append_version=False)


async def runtime_context(app: web.Application) -> AsyncIterator[None]:
    """Process-wide settings of the inference runtime: GIL switch interval, torch threads."""
    config = app[CONFIG]
    # the inference thread releases the GIL around every torch op; while the event loop or the
    # compile thread runs Python it waits up to the switch interval (5 ms by default) to take it
    # back, at every op: an eager lite frame went from 125 to 535 ms beside one busy Python
    # thread (148 ms at 0.2 ms, 2-core AMD EPYC)
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    # leave a core to the event loop and the video codecs, which run beside the model
    configure_torch(
        config.threads or max(1, cpu_count() - 1),
        config.data_dir / "torch-cache",
        in_process=resolve_device(config.device).type != "cpu",  # a CPU builds in children
    )
    yield


async def index(request: web.Request) -> web.FileResponse:
    """GET /: the live page."""
    return web.FileResponse(request.app[CONFIG].web_dir / "index.html", headers=NO_CACHE)


async def healthz(request: web.Request) -> web.Response:
    """GET /healthz: status, device, styles, what serves each frame size, load against capacity.

    "status" is "ok" whenever viewers are taken (eager serves a size while its compiled
    version builds: "inference" says which serves each); "warming_up" while no style is loaded.
    """
    registry, config, live = request.app[REGISTRY], request.app[CONFIG], request.app[PEERS]
    peers, ready = len(live), registry.default is not None
    return web.json_response(
        {
            "status": "ok" if ready else "warming_up",
            "device": str(registry.device),
            "variant": registry.preferred_variant,
            "styles": [s.name for s in registry.styles()],
            "inference": registry.inference(),
            "peers": peers,
            "max_peers": config.max_peers,
            "load": round(peers / max(1, config.max_peers), 3),
            "at_capacity": peers >= config.max_peers or not ready,
            "peers_dropped": {reason: live.dropped[reason] for reason in DROP_REASONS},
            "peers_refused": {reason: live.refused[reason] for reason in REFUSE_REASONS},
            "role": config.role,
            "jobs": JOBS in request.app,
        }
    )


async def metrics(request: web.Request) -> web.Response:
    """GET /metrics: Prometheus text."""
    registry = request.app[METRICS]
    return web.Response(body=registry.render(), headers={"Content-Type": registry.content_type})
