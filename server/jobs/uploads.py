"""Multipart uploads streamed to disk under server-made names, with limits, then probed."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from aiohttp import BodyPartReader, web
from PIL import Image, UnidentifiedImageError

from stylefusion.errors import MediaError
from stylefusion.images import IMAGE_FORMATS
from stylefusion.media_probe import MediaTooLarge, probe_video_isolated

from ..config import ServerConfig
from ..errors import BadRequest, PayloadTooLarge, Unprocessable, UnsupportedMedia

log = logging.getLogger(__name__)

CHUNK = 256 * 1024
MAX_FIELD_BYTES = 4096  # plain form fields (names, numbers) are short
MAX_FILES = 200  # per field (content photos for training)
MAX_FIELDS = 50


@dataclass(frozen=True)
class UploadLimits:
    """Size, duration and resolution limits of uploads (from ServerConfig)."""

    clip_bytes: int
    image_bytes: int
    clip_seconds: float
    clip_pixels: int
    image_pixels: int
    probe_memory_mb: int

    @classmethod
    def from_config(cls, config: ServerConfig) -> UploadLimits:
        """The upload limits a server config sets."""
        return cls(
            clip_bytes=config.max_clip_bytes,
            image_bytes=config.max_image_bytes,
            clip_seconds=config.max_clip_seconds,
            clip_pixels=config.max_clip_pixels,
            image_pixels=config.max_image_pixels,
            probe_memory_mb=config.probe_memory_mb,
        )


@dataclass
class UploadedForm:
    """Plain fields and the files saved from one multipart request."""

    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, list[Path]] = field(default_factory=dict)
    names: dict[str, list[str]] = field(default_factory=dict)  # each file's name as sent

    def file(self, name: str) -> Path:
        """The one file uploaded as `name` (422 if it is missing)."""
        paths = self.files.get(name)
        if not paths:
            raise Unprocessable(f"missing file field {name!r}")
        return paths[0]

    def sent_name(self, name: str) -> str:
        """The client's own file name of the first file uploaded as `name` ("" if none)."""
        return (self.names.get(name) or [""])[0]


@dataclass(frozen=True)
class FileField:
    """A file field of a job form: its byte cap, and how many files the job takes in it."""

    max_bytes: int
    max_files: int = 1


FieldsCheck = Callable[[dict[str, str], bool], Awaitable[None]]  # (fields so far, final)


async def read_form(
    request: web.Request,
    dest: Path,
    file_fields: dict[str, FileField],
    max_total: int,
    check_fields: FieldsCheck,
) -> UploadedForm:
    """Stream a multipart body into `dest`, its fields and files in whatever order they come.

    `check_fields(fields, False)` runs before each file that follows new fields, so a bad
    value refuses the request before that file is stored; `check_fields(fields, True)` once
    the whole form is read, so a field after the files counts as much as one before them.
    A repeated field is a 422, a file the job does not take a 400; the caller deletes `dest`
    whenever this raises.
    """
    if request.content_length is not None and request.content_length > max_total:
        raise PayloadTooLarge(f"upload too large: at most {_mib(max_total)} MiB")
    if not request.content_type.startswith("multipart/"):
        raise UnsupportedMedia("send the form as multipart/form-data")
    form = UploadedForm()
    reader = await request.multipart()
    used = 0  # bytes of files saved so far (chunked bodies have no Content-Length to check)
    checked = -1  # how many fields the last check saw
    while (part := await reader.next()) is not None:
        name = _part_name(part)
        if part.filename is None and name not in file_fields:
            await _add_field(form, part, name)
            continue
        rule = _file_rule(form, file_fields, name)
        if len(form.fields) != checked:
            await check_fields(form.fields, False)
            checked = len(form.fields)
        used += await _save_file(part, form, dest, min(rule.max_bytes, max_total - used))
    await check_fields(form.fields, True)
    return form


def _part_name(part: object) -> str:
    """The name of a top-level form part (400 for nested or unnamed parts)."""
    if not isinstance(part, BodyPartReader) or not part.name:
        raise BadRequest("nested or unnamed multipart parts are not accepted")
    return part.name


async def _add_field(form: UploadedForm, part: BodyPartReader, name: str) -> None:
    """Read one plain field into the form: 422 if it came already, 413 past MAX_FIELDS."""
    if name in form.fields:
        raise Unprocessable(f"field {name!r} was sent twice")
    if len(form.fields) >= MAX_FIELDS:
        raise PayloadTooLarge("too many form fields")
    form.fields[name] = await _read_field(part)


def _file_rule(form: UploadedForm, file_fields: dict[str, FileField], name: str) -> FileField:
    """The rule of a file part's field; 400 for a field or a file the job does not take."""
    rule = file_fields.get(name)
    if rule is None:
        raise BadRequest(f"unexpected file field {name!r}")
    if len(form.files.get(name, ())) >= rule.max_files:
        many = "one file" if rule.max_files == 1 else f"at most {rule.max_files} files"
        raise BadRequest(f"{name!r} takes {many}")
    return rule


async def _read_field(part: BodyPartReader) -> str:
    data = bytearray()
    while chunk := await part.read_chunk(MAX_FIELD_BYTES):
        data += chunk
        if len(data) > MAX_FIELD_BYTES:
            raise PayloadTooLarge(f"form field {part.name!r} is too long")
    try:
        return data.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise BadRequest(f"form field {part.name!r} is not UTF-8 text") from exc


async def _save_file(part: BodyPartReader, form: UploadedForm, dest: Path, limit: int) -> int:
    """Save one file part under a server-made name, at most `limit` bytes; returns its size."""
    paths = form.files.setdefault(str(part.name), [])
    target = dest / f"upload-{part.name}-{len(paths)}"
    size = await _save_part(part, target, limit)
    paths.append(target)
    form.names.setdefault(str(part.name), []).append(part.filename or "")
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
                raise PayloadTooLarge(f"{part.name!r} is over the limit of {_mib(limit)} MiB")
            await asyncio.to_thread(f.write, chunk)
    except BaseException:
        f.close()
        target.unlink(missing_ok=True)
        raise
    f.close()
    if size == 0:
        target.unlink(missing_ok=True)
        raise Unprocessable(f"{part.name!r} is empty")
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
        raise PayloadTooLarge("image resolution is too large") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise UnsupportedMedia("not an image this server can read (JPEG, PNG, WebP, ...)") from exc
    if pixels > limits.image_pixels:
        raise PayloadTooLarge(f"image has {pixels} pixels; the limit is {limits.image_pixels}")
    suffix = IMAGE_FORMATS.get(fmt)
    if suffix is None:
        raise UnsupportedMedia(f"image format {fmt or 'unknown'} is not accepted")
    final = path.with_name(path.name.removeprefix("upload-") + suffix)
    path.rename(final)
    return final


def probe_clip(path: Path, limits: UploadLimits) -> Path:
    """Check in a memory-capped child process that `path` is a decodable video within limits.

    The declared frame size is checked before any frame is decoded; a clip of unknown length
    (a raw .h264 stream) passes here and is held to the duration limit while it is transcoded.
    """
    try:
        probe_video_isolated(
            path, limits.clip_seconds, limits.clip_pixels, memory_mb=limits.probe_memory_mb
        )
    except MediaTooLarge as exc:
        raise PayloadTooLarge(_upload_reason(exc, path)) from exc
    except MediaError as exc:
        reason = _upload_reason(exc, path)
        raise UnsupportedMedia(f"not a video this server can decode: {reason}") from exc
    final = path.with_name(path.name.removeprefix("upload-") + ".video")
    path.rename(final)
    return final


def _upload_reason(exc: Exception, path: Path) -> str:
    """An error text that names 'the upload' instead of the server's file name for it."""
    return str(exc).replace(path.name, "the upload")
