"""Still images: loading (EXIF orientation, alpha on white), saving, stylizing files or folders."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import InvalidInput, MediaError
from .fsutil import atomic_write
from .progress import Progress, ProgressCallback, RateMeter
from .stylizer import Stylizer

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"})


def load_image(path: Path, max_side: int | None = None) -> np.ndarray:
    """Read an image as (H, W, 3) uint8 RGB: EXIF rotation applied, transparency on white.

    With `max_side`, an image whose longest side is larger is scaled down to it.
    """
    try:
        with Image.open(path) as img:
            img.load()
            rgb = _flatten(ImageOps.exif_transpose(img))
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError, ValueError) as exc:
        raise MediaError(f"{Path(path).name} is not a readable image: {exc}") from exc
    if max_side is not None and max(rgb.size) > max_side:
        rgb = resize_longest(rgb, max_side)
    return np.array(rgb, dtype=np.uint8)  # a writable copy


def _flatten(img: Image.Image) -> Image.Image:
    """RGB version of any PIL image, with transparent parts composited onto white."""
    has_alpha = img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info
    if not has_alpha:
        return img.convert("RGB")
    rgba = img.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def resize_longest(img: Image.Image, side: int) -> Image.Image:
    """Scale an image so its longest side is `side` pixels, keeping the aspect ratio."""
    if side < 1:
        raise InvalidInput(f"size must be a positive number of pixels, got {side}")
    scale = side / max(img.size)
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    return img if size == img.size else img.resize(size, Image.Resampling.LANCZOS)


def save_image(path: Path, rgb: np.ndarray) -> Path:
    """Write (H, W, 3) uint8 RGB atomically; the format follows the suffix (PNG if unknown)."""
    path = Path(path)
    image = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8), "RGB")
    fmt = Image.registered_extensions().get(path.suffix.lower(), "PNG")
    options = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    atomic_write(path, lambda tmp: image.save(tmp, format=fmt, **options))
    return path


def collect_images(inputs: Iterable[Path]) -> list[tuple[Path, Path | None]]:
    """(image, output sub-folder) pairs: files as given (None), folders searched recursively."""
    found: list[tuple[Path, Path | None]] = []
    for item in map(Path, inputs):
        if item.is_file():
            found.append((item, None))
        elif item.is_dir():
            for file in sorted(p for p in item.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
                if file.is_file():
                    found.append((file, file.parent.relative_to(item)))
        else:
            raise InvalidInput(f"no such file or folder: {item}")
    if not found:
        raise InvalidInput("no images found in " + ", ".join(str(p) for p in inputs))
    return found


def stylize_images(
    inputs: list[Path],
    output_dir: Path,
    stylizer: Stylizer,
    size: int | None = None,
    strength: float = 1.0,
    progress: ProgressCallback | None = None,
) -> list[Path]:
    """Stylize image files and folders into output_dir as <stem>-<style>.png; returns the files.

    `size` sets the longest side (default: the input's size). Unreadable images found in a
    folder are skipped with a warning; an unreadable file named directly is an error.
    """
    if not 0.0 <= strength <= 1.0:
        raise InvalidInput(f"strength must be within 0..1, got {strength}")
    if size is not None and size < 1:
        raise InvalidInput(f"size must be a positive number of pixels, got {size}")
    jobs = collect_images(inputs)
    meter = RateMeter(len(jobs))
    written: list[Path] = []
    for done, (source, subfolder) in enumerate(jobs, start=1):
        name = f"{source.stem}-{stylizer.name or 'styled'}.png"
        target = Path(output_dir) / (subfolder or Path()) / name
        if _stylize_one(source, target, stylizer, size, strength, named=subfolder is None):
            written.append(target)
        if progress is not None:
            rate, eta = meter.report(done)
            progress(Progress(done=done, total=len(jobs), eta_s=eta, rate=rate))
    return written


def _stylize_one(
    source: Path, target: Path, stylizer: Stylizer, size: int | None, strength: float, named: bool
) -> bool:
    """Stylize one file; False (with a warning) if a file found in a folder cannot be read."""
    try:
        rgb = load_image(source)
    except MediaError as exc:
        if named:
            raise
        log.warning("skipping %s", exc)
        return False
    if size is not None:
        rgb = np.array(resize_longest(Image.fromarray(rgb), size))
    styled = stylizer(rgb[None], strength=strength)[0]  # (H, W, 3) uint8
    save_image(target, styled)
    log.info("wrote %s", target)
    return True
