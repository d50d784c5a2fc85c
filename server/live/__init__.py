"""The live room: WebRTC signalling, peers, tracks, the batcher, the send budget, warm-up,
and streams (WHIP in, WHEP out).

browser -> /offer -> track (newest frame) -> batcher -> Stylizer -> track -> browser
page's camera frame -> /api/snapshot -> batcher (one still) -> PNG
OBS -> /whip -> track (newest frame) -> batcher -> Stylizer -> fan-out -> /whep watchers
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from stylefusion.stylizer import Stylizer

from ..keys import AUDIENCE, CONFIG, METRICS, STYLES
from ..services import StyleCatalog
from . import signalling, snapshot, warmup, whep, whip
from .batcher import Batcher
from .budget import BudgetPlanner, CostModel, box_shapes
from .keys import BATCHER, BUDGET, PEERS, RESOURCES, STREAMS
from .peers import PeerSet
from .sdp_http import Resources, add_sdp_routes
from .streams import StreamSet
from .streams_api import list_streams, restyle, watch_page

log = logging.getLogger(__name__)


def setup_live(app: web.Application) -> None:
    """The batcher, viewers, streams and send budget on the live keys; /offer, /api/config,
    /whip, /whep, /api/streams and /watch."""
    config, metrics, styles = app[CONFIG], app[METRICS], app[STYLES]
    planner = BudgetPlanner(CostModel(), settled=lambda box: settled(styles, box))
    batcher = Batcher(
        styles.model,
        config.max_batch,
        config.max_wait_ms / 1000,
        metrics,
        costs=planner.costs,
        fit=lambda width, height: planner.current.fit(width, height),
        max_stills=config.snapshots_at_once,
    )
    peers = PeerSet(config.max_peers, batcher, metrics, planner)
    app[BUDGET], app[BATCHER], app[PEERS] = planner, batcher, peers
    app[AUDIENCE] = peers
    app[STREAMS] = StreamSet(config.max_streams, config.max_watchers, metrics)
    app[RESOURCES] = resources = Resources()
    app.router.add_get("/api/config", page_config)
    app.router.add_post("/offer", signalling.offer)
    app.router.add_post("/api/snapshot", snapshot.snapshot)
    add_sdp_routes(app, "whip", whip.publish, resources)
    add_sdp_routes(app, "whep", whep.watch, resources)
    app.router.add_get("/api/streams", list_streams)
    app.router.add_patch("/api/streams/{stream}", restyle)
    app.router.add_get("/watch/{stream}", watch_page)
    app.cleanup_ctx.append(live_context)


async def live_context(app: web.Application) -> AsyncIterator[None]:
    """Time the model, start the inference thread; close every peer on exit.

    Nothing waits on a compile: eager serves each frame size until its compiled version
    (built at low priority meanwhile) is ready, so the server takes viewers within seconds.
    """
    config, styles, batcher, peers = app[CONFIG], app[STYLES], app[BATCHER], app[PEERS]
    styles.lower_priority()  # builds are background work from the start: viewers come first
    await asyncio.to_thread(
        warmup.prepare, default_first(styles), app[BUDGET], config.max_peers, config.max_batch
    )
    batcher.start()
    log.info("serving %d style(s)", len(styles.styles()))
    budget = asyncio.create_task(replan(app, config.budget_interval_s), name="budget")
    try:
        yield
    finally:
        budget.cancel()
        await asyncio.gather(budget, return_exceptions=True)
        await peers.close_all()  # publishers too: their streams end, and end their watchers
        await app[STREAMS].close_all()
        await batcher.stop()


def settled(styles: StyleCatalog, box: tuple[int, int]) -> bool:
    """Whether the default style runs a box's frame sizes as it will for good (built)."""
    if styles.default is None:
        return True
    stylizer = styles.stylizer(styles.default)
    return all(stylizer.settled(height, width) for height, width in box_shapes(box))


def default_first(styles: StyleCatalog) -> list[Stylizer]:
    """The loaded styles' stylizers, the default style's first (a shared one once)."""
    names = sorted((s.name for s in styles.styles()), key=lambda name: name != styles.default)
    stylizers = {id(s): s for s in (styles.stylizer(name) for name in names)}  # shared: once
    return list(stylizers.values())


async def replan(app: web.Application, interval_s: float) -> None:
    """Re-plan the send budget as the measured cost changes; tell every page when it does.

    Each round also queues the shapes the budget would pick at the current costs, so a size
    that builds landing make affordable is built before the budget offers it.
    """
    config, planner, peers, styles = app[CONFIG], app[BUDGET], app[PEERS], app[STYLES]
    while True:
        await asyncio.sleep(interval_s)
        if planner.update():
            peers.broadcast(planner.current.message())
        warmup.compile_ahead(default_first(styles), planner, config.max_peers, config.max_batch)


async def page_config(request: web.Request) -> web.Response:
    """GET /api/config: ICE servers and limits for the page."""
    body = signalling.page_config(request.app[CONFIG], request.app[BUDGET].for_newcomer())
    return web.Response(text=body, content_type="application/json")
