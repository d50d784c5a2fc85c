"""The live room: WebRTC signalling, peers, tracks, the batcher, the send budget, warm-up.

browser -> /offer -> track (newest frame) -> batcher -> Stylizer -> track -> browser
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from ..keys import AUDIENCE, CONFIG, METRICS, READY, STYLES
from . import signalling, warmup
from .batcher import Batcher
from .budget import BudgetPlanner, CostModel
from .keys import BATCHER, BUDGET, PEERS
from .peers import PeerSet

log = logging.getLogger(__name__)


def setup_live(app: web.Application) -> None:
    """The batcher, viewers and send budget on the live keys; /offer and /api/config."""
    config, metrics, styles = app[CONFIG], app[METRICS], app[STYLES]
    planner = BudgetPlanner(CostModel())
    batcher = Batcher(
        styles.stylizer,
        config.max_batch,
        config.max_wait_ms / 1000,
        metrics,
        costs=planner.costs,
        fit=lambda width, height: planner.current.fit(width, height),
    )
    peers = PeerSet(config.max_peers, batcher, metrics, planner)
    app[BUDGET], app[BATCHER], app[PEERS] = planner, batcher, peers
    app[AUDIENCE] = peers
    app[READY] = asyncio.Event()
    app.router.add_get("/api/config", page_config)
    app.router.add_post("/offer", signalling.offer)
    app.cleanup_ctx.append(live_context)


async def live_context(app: web.Application) -> AsyncIterator[None]:
    """Warm the styles up, start the inference thread; close every peer on exit."""
    config, styles, batcher, peers = app[CONFIG], app[STYLES], app[BATCHER], app[PEERS]
    names = sorted((s.name for s in styles.styles()), key=lambda name: name != styles.default)
    stylizers = [styles.stylizer(name) for name in names]  # the default style first

    async def warm_up() -> None:
        # start-up compiles at full speed; once viewers can come, compiling yields to them
        await asyncio.to_thread(
            warmup.prepare, stylizers, app[BUDGET], config.max_peers, config.max_batch
        )
        styles.lower_priority()
        batcher.start()
        app[READY].set()
        log.info("serving %d style(s)", len(stylizers))

    tasks = [asyncio.create_task(replan(app, config.budget_interval_s), name="budget")]
    if not styles.compiling:
        await warm_up()  # eager: a few timed calls
    else:
        # compiling takes seconds warm, minutes cold: meanwhile the pages and the API answer,
        # and /offer says 503 "warming up" (the page retries by itself)
        log.info("compiling for this machine before taking viewers (a minute or more cold)")
        tasks.append(asyncio.create_task(warm_up(), name="warm-up"))
    try:
        yield
    finally:
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


async def page_config(request: web.Request) -> web.Response:
    """GET /api/config: ICE servers and limits for the page."""
    body = signalling.page_config(request.app[CONFIG], request.app[BUDGET].for_newcomer())
    return web.Response(text=body, content_type="application/json")
