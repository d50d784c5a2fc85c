"""The style catalogue over HTTP: /api/styles and the style thumbnails."""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path
from typing import Any

from aiohttp import web

from stylefusion.images import center_square, encode_jpeg, read_rgb
from stylefusion.style_folder import STYLE_IMAGE

from .files import is_shipped
from .keys import REGISTRY
from .registry import LoadedStyle, StyleRegistry

THUMB_SIZES = (64, 128, 256, 512)  # ?size= snaps up to one of these, so the cache stays small
THUMB_DEFAULT = 256


def style_entry(style: LoadedStyle) -> dict[str, Any]:
    """One style as the pages see it."""
    version = style.version
    return {
        "name": style.name,
        "display_name": style.info.display_name,
        "variant": style.variant,
        "variants": list(style.info.variants),
        "thumbnail": f"/api/styles/{style.name}/thumbnail?v={version}",
        "version": version,
        "shipped": is_shipped(style.info.meta),
        "network": style.model.network,  # styles of one network share model calls and blend
    }


def styles_payload(registry: StyleRegistry) -> dict[str, Any]:
    """`{"styles": [...], "default": name, "hidden": [names]}`, as served by /api/styles."""
    return {
        "styles": [style_entry(s) for s in registry.loaded()],
        "default": registry.default,
        "hidden": sorted(registry.hidden),
    }


async def list_styles(request: web.Request) -> web.Response:
    """GET /api/styles."""
    return web.json_response(styles_payload(request.app[REGISTRY]))


async def thumbnail(request: web.Request) -> web.Response:
    """GET /api/styles/{name}/thumbnail[?size=N]: the style image as a small JPEG."""
    registry = request.app[REGISTRY]
    name = request.match_info["name"]
    if name in registry:
        image = registry.get(name).info.style_image
    elif name in registry.hidden:  # the admin page shows hidden styles too
        image = registry.models_dir / name / STYLE_IMAGE
    else:
        image = None
    if image is None or not image.is_file():
        return web.json_response({"error": f"no thumbnail for style {name!r}"}, status=404)
    try:
        size = int(request.query.get("size", THUMB_DEFAULT))
    except ValueError:
        return web.json_response({"error": "size must be an integer"}, status=400)
    size = snap_size(size)
    stat = image.stat()
    data = await asyncio.to_thread(thumbnail_bytes, str(image), stat.st_mtime_ns, size)
    headers = {"Cache-Control": "public, max-age=86400"}
    return web.Response(body=data, content_type="image/jpeg", headers=headers)


def snap_size(size: int) -> int:
    """The smallest thumbnail size >= size (the largest for bigger requests)."""
    return next((s for s in THUMB_SIZES if s >= size), THUMB_SIZES[-1])


@functools.lru_cache(maxsize=128)
def thumbnail_bytes(path: str, mtime_ns: int, size: int) -> bytes:
    """A centre-cropped square JPEG of the image (cached per file version and size)."""
    return encode_jpeg(center_square(read_rgb(Path(path)), size), quality=85)
