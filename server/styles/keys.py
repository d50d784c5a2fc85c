"""AppKeys of the styles room's own objects."""

from __future__ import annotations

from aiohttp import web

from .registry import StyleRegistry

REGISTRY = web.AppKey("registry", StyleRegistry)
