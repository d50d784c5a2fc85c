"""Every typed AppKey of the application, declared in one place."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from aiohttp import web

from .config import ServerConfig

if TYPE_CHECKING:
    from .batcher import Batcher
    from .budget import BudgetPlanner
    from .jobs.auth import AdminGuard
    from .jobs.runner import JobRunner
    from .jobs.store import JobStore
    from .metrics import Metrics
    from .peers import PeerSet
    from .registry import StyleRegistry

CONFIG = web.AppKey("config", ServerConfig)
REGISTRY: web.AppKey[StyleRegistry] = web.AppKey("registry")
BATCHER: web.AppKey[Batcher] = web.AppKey("batcher")
PEERS: web.AppKey[PeerSet] = web.AppKey("peers")
BUDGET: web.AppKey[BudgetPlanner] = web.AppKey("budget")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
READY = web.AppKey("ready", asyncio.Event)  # set once start-up's compiling is done
JOB_STORE: web.AppKey[JobStore] = web.AppKey("job_store")
JOB_RUNNER: web.AppKey[JobRunner] = web.AppKey("job_runner")
ADMIN_TOKEN = web.AppKey("admin_token", str)
ADMIN_GUARD: web.AppKey[AdminGuard] = web.AppKey("admin_guard")  # token check + throttle
