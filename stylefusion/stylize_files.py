"""Stylizing image files and folders into an output folder (the `stylize` command)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from .errors import InvalidInput, MediaError
from .images import find_images, read_rgb, resize_longest, save_image
from .progress import Progress, ProgressCallback, RateMeter
from .stylizer import Stylizer

log = logging.getLogger(__name__)


def collect_images(inputs: Iterable[Path]) -> list[tuple[Path, Path | None]]:
    """(image, output sub-folder) pairs: files as given (None), folders searched recursively."""
    found: list[tuple[Path, Path | None]] = []
    for item in map(Path, inputs):
        if item.is_file():
            found.append((item, None))
        elif item.is_dir():
            found += [(file, file.parent.relative_to(item)) for file in find_images(item)]
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
        image = read_rgb(source)
    except MediaError as exc:
        if named:
            raise
        log.warning("skipping %s", exc)
        return False
    if size is not None:
        image = resize_longest(image, size)
    styled = stylizer(np.array(image)[None], strength=strength)[0]  # (H, W, 3) uint8
    save_image(target, styled)
    log.info("wrote %s", target)
    return True
