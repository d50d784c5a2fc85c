"""Flicker: how much stylized frames change where their source does not move.

For a still camera, frame t+1 is compared with frame t. For a camera whose motion is known (a
synthetic pan), frame t is first moved by that motion, so "static" means static after the warp.
A pixel counts as static when no source channel changed by `threshold` levels or more there
(nor within `margin` pixels of it); the score is the mean absolute change of the stylized
frames over those pixels, in 0..255 levels, averaged over channels.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from .errors import InvalidInput

Frames = Sequence[np.ndarray]  # (H, W, 3) uint8 each
Motion = tuple[float, float]  # (dx, dy) pixels the content moves from frame t to frame t+1


@dataclass(frozen=True)
class FlickerConfig:
    """What counts as a static source pixel."""

    threshold: float = 12.0  # source change, 0..255 levels of its largest channel
    margin: int = 2  # pixels this close to a moving one are not static either

    def __post_init__(self) -> None:
        if self.threshold <= 0 or self.margin < 0:
            raise InvalidInput("flicker threshold must be > 0 and margin >= 0")


@dataclass(frozen=True)
class FlickerScore:
    """Mean change of stylized frames over the static pixels of every frame pair."""

    change: float  # 0..255 levels, mean over channels and static pixels
    static_fraction: float  # static pixels / compared pixels
    pairs: int

    def to_dict(self) -> dict[str, float | int]:
        """JSON-ready, rounded."""
        row = asdict(self)
        row["change"] = round(self.change, 4)
        row["static_fraction"] = round(self.static_fraction, 4)
        return row


def shift(frame: np.ndarray, motion: Motion) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, C) float32 frame whose content moved by (dx, dy) pixels (bilinear), and the
    (H, W) bool mask of pixels that came from inside the frame."""
    h, w = frame.shape[:2]
    matrix = np.float32([[1, 0, motion[0]], [0, 1, motion[1]]])
    moved = cv2.warpAffine(frame.astype(np.float32), matrix, (w, h), flags=cv2.INTER_LINEAR)
    ones = np.ones((h, w), np.float32)
    inside = cv2.warpAffine(ones, matrix, (w, h), flags=cv2.INTER_LINEAR) > 0.999
    return moved.reshape(frame.shape), inside


def static_mask(before: np.ndarray, after: np.ndarray, config: FlickerConfig) -> np.ndarray:
    """(H, W) bool: pixels where no channel changed by `threshold` levels, nor near one that did."""
    change = np.abs(after.astype(np.float32) - before.astype(np.float32)).max(axis=2)
    moving = (change >= config.threshold).astype(np.uint8)
    if config.margin:
        side = 2 * config.margin + 1
        moving = cv2.dilate(moving, np.ones((side, side), np.uint8))
    return moving == 0


def flicker(
    sources: Frames,
    stylized: Frames,
    motions: Sequence[Motion] | None = None,
    config: FlickerConfig | None = None,
) -> FlickerScore:
    """Flicker of stylized frames over their sources' static pixels; `motions` (one per
    frame pair) is the known camera motion, None for a still camera."""
    config = config or FlickerConfig()
    _check(sources, stylized, motions)
    total, static, compared = 0.0, 0, 0
    for mask, before, after in _aligned_pairs(sources, stylized, motions, config):
        diff = np.abs(after.astype(np.float32) - before).mean(axis=2)  # (H, W)
        total += float(diff[mask].sum())
        static += int(mask.sum())
        compared += mask.size
    pairs = len(sources) - 1
    return FlickerScore(total / max(static, 1), static / max(compared, 1), pairs)


def _aligned_pairs(
    sources: Frames, stylized: Frames, motions: Sequence[Motion] | None, config: FlickerConfig
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(static mask, stylized frame t moved onto t+1, stylized frame t+1) per frame pair."""
    for t in range(len(sources) - 1):
        source, styled = sources[t], stylized[t].astype(np.float32)
        inside = np.ones(source.shape[:2], bool)
        if motions is not None:
            source, inside = shift(source, motions[t])
            styled, _ = shift(styled, motions[t])
        mask = static_mask(source, sources[t + 1], config) & inside
        yield mask, styled, stylized[t + 1]


def _check(sources: Frames, stylized: Frames, motions: Sequence[Motion] | None) -> None:
    """Frames pair up, share one size, and there is one motion per pair."""
    if len(sources) < 2 or len(sources) != len(stylized):
        raise InvalidInput(f"need 2+ source frames and as many stylized ({len(sources)}, "
                           f"{len(stylized)})")  # fmt: skip
    if {f.shape for f in sources} | {f.shape for f in stylized} != {sources[0].shape}:
        raise InvalidInput("source and stylized frames must all share one (H, W, 3) size")
    if motions is not None and len(motions) != len(sources) - 1:
        raise InvalidInput(f"need one motion per frame pair ({len(sources) - 1}), "
                           f"got {len(motions)}")  # fmt: skip


def static_fractions(sources: Frames, config: FlickerConfig | None = None) -> np.ndarray:
    """(N - 1,) share of static pixels between each frame and the next (still camera)."""
    config = config or FlickerConfig()
    return np.array(
        [static_mask(a, b, config).mean() for a, b in zip(sources, sources[1:], strict=False)]
    )


def stillest_window(fractions: np.ndarray, length: int) -> int:
    """First frame of the `length` consecutive frames whose pairs are the most static."""
    pairs = length - 1
    if pairs < 1 or pairs > len(fractions):
        raise InvalidInput(f"a window of {length} frames does not fit {len(fractions) + 1}")
    sums = np.convolve(fractions, np.ones(pairs), mode="valid")  # (N - pairs,)
    return int(np.argmax(sums))


def synthetic_pan(
    photo: np.ndarray,
    size: tuple[int, int],
    frames: int,
    step: Motion,
    noise_std: float = 0.0,
    seed: int = 0,
) -> tuple[list[np.ndarray], list[Motion]]:
    """`frames` (H, W, 3) uint8 views of size (W, H) of a photo, the camera moving by `step`
    pixels a frame from the top-left corner (bilinear), plus Gaussian sensor noise of
    `noise_std` levels; and the content's motion per frame pair (minus the step)."""
    width, height = size
    reach_x, reach_y = (abs(s) * (frames - 1) for s in step)
    if width + reach_x + 1 > photo.shape[1] or height + reach_y + 1 > photo.shape[0]:
        raise InvalidInput(f"a {photo.shape[1]}x{photo.shape[0]} photo cannot hold a "
                           f"{width}x{height} pan of {frames} frames")  # fmt: skip
    start = (reach_x if step[0] < 0 else 0.0, reach_y if step[1] < 0 else 0.0)
    rng = np.random.default_rng(seed)
    views = []
    for t in range(frames):
        offset = (-(start[0] + t * step[0]), -(start[1] + t * step[1]))
        view, _ = shift(photo, offset)
        view = view[:height, :width]
        if noise_std > 0:
            view = view + rng.normal(0.0, noise_std, view.shape)
        views.append(np.clip(np.rint(view), 0, 255).astype(np.uint8))
    return views, [(-step[0], -step[1])] * (frames - 1)
