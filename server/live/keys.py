"""AppKeys of the live room's own objects."""

from __future__ import annotations

from aiohttp import web

from .batcher import Batcher
from .budget import BudgetPlanner
from .peers import PeerSet

BATCHER = web.AppKey("batcher", Batcher)
BUDGET = web.AppKey("budget", BudgetPlanner)
PEERS = web.AppKey("peers", PeerSet)
