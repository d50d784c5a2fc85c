"""The AppKeys every room may read: the frame's own objects and the rooms' shared views.

A room's private objects hang on keys of its own (server/live/keys.py, server/styles/keys.py,
server/jobs/keys.py); what another room needs is here, typed with a Protocol of services.py.
"""

from __future__ import annotations

from aiohttp import web

from .auth import AdminGuard, TokenGuard
from .config import ServerConfig
from .metrics import Metrics
from .services import Audience, JobLedger, StyleCatalog

CONFIG = web.AppKey("config", ServerConfig)
METRICS = web.AppKey("metrics", Metrics)
ADMIN_TOKEN = web.AppKey("admin_token", str)
ADMIN_GUARD = web.AppKey("admin_guard", AdminGuard)  # token check + throttle, shared by rooms
PUBLISH_GUARD = web.AppKey("publish_guard", TokenGuard)  # WHIP: the publish or admin token
WATCH_GUARD: web.AppKey[TokenGuard | None] = web.AppKey("watch_guard")  # None: watching is open
STYLES: web.AppKey[StyleCatalog] = web.AppKey("styles")  # the styles room's registry
AUDIENCE: web.AppKey[Audience] = web.AppKey("audience")  # the live room's viewers
JOBS: web.AppKey[JobLedger] = web.AppKey("jobs")  # the jobs room's store (not on live nodes)
