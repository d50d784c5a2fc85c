"""AppKeys of the live room's own objects."""

from __future__ import annotations

from aiohttp import web

from .batcher import Batcher
from .budget import BudgetPlanner
from .peers import PeerSet
from .sdp_http import Resources
from .streams import StreamSet

BATCHER = web.AppKey("batcher", Batcher)
BUDGET = web.AppKey("budget", BudgetPlanner)
PEERS = web.AppKey("peers", PeerSet)
STREAMS = web.AppKey("streams", StreamSet)  # WHIP publishers and their WHEP watchers
RESOURCES = web.AppKey("resources", Resources)  # the WHIP/WHEP session URLs
