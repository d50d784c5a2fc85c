"""Multipart uploads streamed to disk under server-made names, with limits, then probed."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from aiohttp import BodyPartReader, web
from PIL import Image, UnidentifiedImageError

from stylefusion.errors import MediaError
from stylefusion.images import IMAGE_FORMATS

log = logging.getLogger(__name__)

CHUNK = 256 * 1024
MAX_FIELD_BYTES = 4096  # plain form fields (names, numbers) are short
MAX_FILES = 200  # per field (content photos for training)
MAX_FIELDS = 50


class UploadError(Exception):
    """An upload the server refuses; carries the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class UploadLimits:
    """Size, duration and resolution limits of uploads."""

    clip_bytes: int = 512 * 2**20
    image_bytes: int = 25 * 2**20
    clip_seconds: float = 15 * 60
    clip_pixels: int = 3840 * 2160
    image_pixels: int = 50_000_000


@dataclass
class UploadedForm:
    """Plain fields and the files saved from one multipart request."""

    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, list[Path]] = field(default_factory=dict)

    def file(self, name: str) -> Path:
        """The one file uploaded as `name` (422 if it is missing)."""
        paths = self.files.get(name)
        if not paths:
            raise UploadError(422, f"missing file field {name!r}")
        return paths[0]


async def read_form(
    request: web.Request, dest: Path, file_limits: dict[str, int], max_total: int
) -> UploadedForm:
    """Stream a multipart body into `dest`; file fields and their byte limits are given."""
    if request.content_length is not None and request.content_length > max_total:
        raise UploadError(413, f"upload too large: at most {_mib(max_total)} MiB")
    if not request.content_type.startswith("multipart/"):
        raise UploadError(415, "send the form as multipart/form-data")
    form = UploadedForm()
    reader = await request.multipart()
    used = 0  # bytes of files saved so far (chunked bodies have no Content-Length to check)
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader) or not part.name:
            raise UploadError(400, "nested or unnamed multipart parts are not accepted")
        if part.filename is None and part.name not in file_limits:
            if len(form.fields) >= MAX_FIELDS:
                raise UploadError(413, "too many form fields")
            form.fields[part.name] = await _read_field(part)
        elif part.name in file_limits:
            used += await _save_file(part, form, dest, file_limits[part.name], max_total - used)
        else:
            raise UploadError(400, f"unexpected file field {part.name!r}")
    return form


async def _read_field(part: BodyPartReader) -> str:
    data = bytearray()
    while chunk := await part.read_chunk(MAX_FIELD_BYTES):
        data += chunk
        if len(data) > MAX_FIELD_BYTES:
            raise UploadError(413, f"form field {part.name!r} is too long")
    try:
        return data.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise UploadError(400, f"form field {part.name!r} is not UTF-8 text") from exc


async def _save_file(
    part: BodyPartReader, form: UploadedForm, dest: Path, limit: int, total_left: int
) -> int:
    """Save one file part under a server-made name; returns its size."""
    paths = form.files.setdefault(str(part.name), [])
    if len(paths) >= MAX_FILES:
        raise UploadError(413, f"too many files in {part.name!r} (at most {MAX_FILES})")
    target = dest / f"upload-{part.name}-{len(paths)}"
    size = await _save_part(part, target, min(limit, total_left))
    paths.append(target)
    return size


async def _save_part(part: BodyPartReader, target: Path, limit: int) -> int:
    """Copy one file part to disk in chunks; past `limit` stop reading and delete the file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    size = 0
    f: BinaryIO = await asyncio.to_thread(open, target, "xb")
    try:
        while chunk := await part.read_chunk(CHUNK):
            size += len(chunk)
            if size > limit:
                raise UploadError(
                    413, f"{part.name!r} is larger than the limit of {_mib(limit)} MiB"
                )
            await asyncio.to_thread(f.write, chunk)
    except BaseException:
        f.close()
        target.unlink(missing_ok=True)
        raise
    f.close()
    if size == 0:
        target.unlink(missing_ok=True)
        raise UploadError(422, f"{part.name!r} is empty")
    return size


def _mib(n: int) -> str:
    return f"{n / 2**20:.3g}"


def probe_image(path: Path, limits: UploadLimits) -> Path:
    """Check that `path` is an image Pillow can decode; rename it with its real extension."""
    try:
        with Image.open(path) as img:
            fmt = img.format or ""
            pixels = img.width * img.height
            img.verify()
    except Image.DecompressionBombError as exc:
        raise UploadError(413, "image resolution is too large") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise UploadError(415, "not an image this server can read (JPEG, PNG, WebP, ...)") from exc
    if pixels > limits.image_pixels:
        raise UploadError(413, f"image has {pixels} pixels; the limit is {limits.image_pixels}")
    suffix = IMAGE_FORMATS.get(fmt)
    if suffix is None:
        raise UploadError(415, f"image format {fmt or 'unknown'} is not accepted")
    final = path.with_name(path.name.removeprefix("upload-") + suffix)
    path.rename(final)
    return final


def probe_clip(path: Path, limits: UploadLimits) -> Path:
    """Check that `path` is a decodable video within the duration and resolution limits."""
    from stylefusion.media_probe import MediaTooLarge, probe_video

    try:
        probe_video(path, limits.clip_seconds, limits.clip_pixels)
    except MediaTooLarge as exc:
        raise UploadError(413, str(exc)) from exc
    except MediaError as exc:
        reason = str(exc).replace(path.name, "the upload")
        raise UploadError(415, f"not a video this server can decode: {reason}") from exc
    final = path.with_name(path.name.removeprefix("upload-") + ".video")
    path.rename(final)
    return final
