"""POST /api/snapshot: the live page's camera frame at full size, painted once, as a PNG.

The stylized stream is as small as the send budget makes it (240x180 with a few viewers on a
CPU); a snapshot is a keepsake, so the page sends the camera's own frame and the server paints
it with the viewer's style and strength. The model runs on the batcher's inference thread, the
one that owns the model and the device: a second thread calling the same Stylizer would race
its compiled graphs (and CUDA's), and a lock of its own would not keep the inference thread
out. The picture is one model call between the viewers' batches; their newest frames wait
that long and then carry on (nothing queues behind it), which is why its pixels are capped.
"""

from __future__ import annotations

import asyncio
import io
import logging
import math

import numpy as np
from aiohttp import web
from av import VideoFrame
from PIL import Image, UnidentifiedImageError

from ..errors import BadRequest, NotFound, PayloadTooLarge, UnsupportedMedia, WarmingUp
from ..json_body import read_body
from ..keys import CONFIG, STYLES
from .keys import BATCHER

log = logging.getLogger(__name__)

IMAGE_TYPES = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}


async def snapshot(request: web.Request) -> web.Response:
    """The posted image painted in ?style= at ?strength=, as PNG bytes (4xx JSON on bad input)."""
    app, config = request.app, request.app[CONFIG]
    kind = IMAGE_TYPES.get(request.content_type)
    if kind is None:
        raise UnsupportedMedia(f"send the picture as one of {', '.join(IMAGE_TYPES)}")
    style, strength = snapshot_settings(request)
    batcher = app[BATCHER]
    batcher.check_still_room()  # before reading a body that would only be refused
    body = await read_body(request, config.max_snapshot_bytes, config.body_timeout_s)
    rgb = await asyncio.to_thread(decode, body, kind, config.max_snapshot_pixels)
    painted = await batcher.paint_still(
        VideoFrame.from_ndarray(rgb, format="rgb24"), style, strength
    )
    png = await asyncio.to_thread(encode_png, painted.frame.to_ndarray(format="rgb24"))
    log.info("painted a %dx%d snapshot in %s", rgb.shape[1], rgb.shape[0], style)
    return web.Response(body=png, content_type="image/png", headers={"Cache-Control": "no-store"})


def snapshot_settings(request: web.Request) -> tuple[str, float]:
    """?style= (a live style; default: the server's) and ?strength= (0..1, default 1)."""
    styles = request.app[STYLES]
    style = request.query.get("style") or styles.default
    if style is None:  # an empty models dir: the first trained style makes the server ready
        raise WarmingUp("no style is loaded yet")
    if style not in styles:
        raise NotFound(f"unknown style {style!r}")
    text = request.query.get("strength", "1")
    try:
        strength = float(text)
    except ValueError:
        raise BadRequest(f"strength must be a number in 0..1, not {text!r}") from None
    if not (math.isfinite(strength) and 0.0 <= strength <= 1.0):
        raise BadRequest(f"strength must be within 0..1, not {text!r}")
    return style, strength


def decode(body: bytes, kind: str, max_pixels: int) -> np.ndarray:
    """(H, W, 3) uint8 RGB of a JPEG/PNG/WebP body of that kind; its size checked first."""
    try:
        with Image.open(io.BytesIO(body), formats=[kind]) as image:
            width, height = image.size  # from the header: nothing decoded yet
            if width * height > max_pixels:
                raise PayloadTooLarge(
                    f"the picture is {width}x{height}; a snapshot has at most {max_pixels} pixels"
                )
            return np.asarray(image.convert("RGB"))
    except Image.DecompressionBombError as exc:
        raise PayloadTooLarge("the picture has far too many pixels") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise UnsupportedMedia(f"the body is not a {kind} image this server can read") from exc


def encode_png(rgb: np.ndarray) -> bytes:
    """PNG bytes of an (H, W, 3) uint8 RGB picture (fast compression: it is sent at once)."""
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format="PNG", compress_level=3)
    return out.getvalue()
