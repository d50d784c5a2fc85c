"""Iterative render settings (RenderConfig), their validation, and the result of a render.

No torch here: the job API checks settings and `stylefusion render --help` reads the defaults
without loading it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import InvalidInput

OPTIMIZERS = ("lbfgs", "adam")
MIN_SIZE = 32


@dataclass(frozen=True)
class RenderConfig:
    """One iterative render: content and style images in, one stylized image out."""

    content: Path
    style_image: Path
    output: Path
    size: int = 512  # longest side of the result
    iterations: int = 300  # loss evaluations in all (L-BFGS: about one per step), over the scales
    optimizer: str = "lbfgs"  # or "adam"
    content_weight: float = 1.0
    style_weight: float = 10.0
    tv_weight: float = 10.0
    scales: int = 1  # coarse to fine: 2 renders at size/2 first, then at size
    device: str = "auto"
    preview_every: int = 50  # 0: no previews
    seed: int = 0  # only used by init="noise"
    style_scale: float = 1.0  # style image longest side, relative to the render size
    init: str = "content"  # start from the content image, or from "noise"
    lr: float = 0.02  # Adam's step on [0, 1] pixels (L-BFGS uses 1.0)
    threads: int | None = None


@dataclass(frozen=True)
class RenderResult:
    """The written image, the last loss terms and the wall time."""

    output: Path
    losses: dict[str, float]
    seconds: float


def validate_render_config(config: RenderConfig) -> None:
    """Fail with InvalidInput before any work if the render cannot run."""
    for label, path in (("content image", config.content), ("style image", config.style_image)):
        if not Path(path).is_file():
            raise InvalidInput(f"{label} {path} does not exist")
    check_render_settings(config)


def check_render_settings(config: RenderConfig) -> None:
    """Fail with InvalidInput if the numbers and choices cannot render (files not looked at)."""
    if config.optimizer not in OPTIMIZERS:
        raise InvalidInput(
            f"unknown optimizer {config.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}"
        )
    if config.init not in ("content", "noise"):
        raise InvalidInput(f"unknown init {config.init!r}; choose content or noise")
    if config.iterations < 1:
        raise InvalidInput(f"iterations must be at least 1, not {config.iterations}")
    if config.scales < 1 or config.size // 2 ** (config.scales - 1) < MIN_SIZE:
        raise InvalidInput(
            f"size {config.size} with {config.scales} scale(s): every scale needs "
            f"at least {MIN_SIZE} px (and scales >= 1)"
        )
    weights = (config.content_weight, config.style_weight, config.tv_weight)
    if min(weights) < 0 or config.lr <= 0 or config.style_scale <= 0 or config.preview_every < 0:
        raise InvalidInput("weights must be >= 0; lr and style_scale > 0; preview_every >= 0")
