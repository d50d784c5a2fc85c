"""Style management over HTTP (admin token): delete or hide, rename, unhide, download as zip."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aiohttp import web

from stylefusion.errors import StyleFormatError
from stylefusion.style_folder import read_meta

from ..auth import AdminGuard
from ..errors import BadRequest, Conflict
from ..json_body import read_json
from ..keys import CONFIG
from ..services import JobLedger
from .api import style_entry
from .files import (
    delete_folder,
    is_shipped,
    set_display_name,
    set_hidden,
    style_folder,
    zip_folder,
)
from .registry import StyleRegistry

MAX_PATCH_BYTES = 4096


class StyleAdmin:
    """Handlers of DELETE/PATCH /api/styles/{name} and GET /api/styles/{name}/download."""

    def __init__(self, registry: StyleRegistry, store: JobLedger | None = None) -> None:
        self.registry = registry
        self.store = store  # to refuse deleting a style that a training job is writing
        self.models_dir = Path(registry.models_dir)
        # one change at a time: two deletes must not both pass the "not the last style" check
        self._lock = asyncio.Lock()

    def add_routes(self, app: web.Application, guard: AdminGuard) -> None:
        """Register the routes, each behind the admin token."""
        app.router.add_delete("/api/styles/{name}", guard(self.delete))
        app.router.add_patch("/api/styles/{name}", guard(self.patch))
        app.router.add_get("/api/styles/{name}/download", guard(self.download))

    async def delete(self, request: web.Request) -> web.Response:
        """DELETE /api/styles/{name}: remove the folder, or hide a shipped style; 409 if last."""
        name = request.match_info["name"]
        folder = style_folder(self.models_dir, name)
        async with self._lock:
            self._refuse_last(name)
            await self._refuse_training(name)
            if is_shipped(await asyncio.to_thread(_meta_or_empty, folder)):
                await asyncio.to_thread(set_hidden, self.models_dir, name, True)
                outcome = {"name": name, "hidden": True}
            else:
                await asyncio.to_thread(delete_folder, folder)
                outcome = {"name": name, "deleted": True}
            await self.registry.rescan()  # now, not at the next poll: viewers move on at once
        return web.json_response({**outcome, "default": self.registry.default})

    async def patch(self, request: web.Request) -> web.Response:
        """PATCH /api/styles/{name} `{"display_name"?, "hidden"?}`: rename, hide or show."""
        name = request.match_info["name"]
        folder = style_folder(self.models_dir, name)
        changes = await read_changes(request)
        async with self._lock:
            if "display_name" in changes:
                await asyncio.to_thread(set_display_name, folder, changes["display_name"])
            if "hidden" in changes:
                if changes["hidden"]:
                    self._refuse_last(name)
                await asyncio.to_thread(set_hidden, self.models_dir, name, changes["hidden"])
            await self.registry.rescan()
        return web.json_response(await asyncio.to_thread(self._describe, name, folder))

    async def download(self, request: web.Request) -> web.Response:
        """GET /api/styles/{name}/download: the style folder as `<name>.zip`."""
        name = request.match_info["name"]
        data = await asyncio.to_thread(zip_folder, style_folder(self.models_dir, name))
        disposition = f'attachment; filename="{name}.zip"'
        return web.Response(
            body=data, content_type="application/zip", headers={"Content-Disposition": disposition}
        )

    def _refuse_last(self, name: str) -> None:
        """Conflict when the style is the only one the live page still has."""
        if name in self.registry and len(self.registry.loaded()) <= 1:
            raise Conflict(f"{name!r} is the last style: add another before removing it")

    async def _refuse_training(self, name: str) -> None:
        """Conflict while a queued or running training job will write the style's folder."""
        if self.store is None:
            return
        if await asyncio.to_thread(self.store.active_with, "train", "name", name):
            raise Conflict(f"a training job is writing style {name!r}: cancel it first")

    def _describe(self, name: str, folder: Path) -> dict[str, Any]:
        """The style as /api/styles lists it, or a short entry while it is hidden or broken."""
        if name in self.registry:
            return style_entry(self.registry.get(name))
        meta = _meta_or_empty(folder)
        return {
            "name": name,
            "display_name": str(meta.get("display_name") or name),
            "hidden": name in self.registry.hidden,
            "shipped": is_shipped(meta),
        }


async def read_changes(request: web.Request) -> dict[str, Any]:
    """The PATCH body: a JSON object with "display_name" (text) and/or "hidden" (bool)."""
    body = await read_json(request, MAX_PATCH_BYTES, request.app[CONFIG].body_timeout_s)
    if not isinstance(body, dict) or not ({"display_name", "hidden"} & body.keys()):
        raise BadRequest('expected a JSON object with "display_name" and/or "hidden"')
    if "hidden" in body and not isinstance(body["hidden"], bool):
        raise BadRequest('"hidden" must be true or false')
    return body


def _meta_or_empty(folder: Path) -> dict[str, Any]:
    """meta.json of a folder; {} for a broken one (it can still be deleted)."""
    try:
        return read_meta(folder)
    except StyleFormatError:
        return {}
