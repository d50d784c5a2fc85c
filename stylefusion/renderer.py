"""Iterative style transfer (Gatys et al. 2016): optimise the pixels of one image against VGG19."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

from .devices import configure_cpu_threads, resolve_device
from .errors import InvalidInput
from .images import read_rgb, resize_longest, save_image, to_tensor, to_uint8
from .losses import content_loss, gram_matrix, style_loss, total_variation, weighted_terms
from .progress import CancelFlag, Progress, ProgressCallback, RateMeter, check_cancel
from .vgg import VGG19

log = logging.getLogger(__name__)

CONTENT_LAYER = "relu4_2"
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
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


class GatysLoss:
    """Content (relu4_2) + style (Grams at relu1_1..relu5_1) + total variation for one scale."""

    def __init__(
        self, vgg: VGG19, content: torch.Tensor, style: torch.Tensor, config: RenderConfig
    ):
        self.vgg = vgg
        self.config = config
        with torch.no_grad():
            self.content_target = vgg(content, [CONTENT_LAYER])[CONTENT_LAYER]
            grams = vgg(style, STYLE_LAYERS)
            self.style_grams = {name: gram_matrix(f) for name, f in grams.items()}

    def __call__(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """Weighted loss terms of a (1, 3, H, W) image in [0, 1]."""
        features = self.vgg(image, (CONTENT_LAYER, *STYLE_LAYERS))
        c = content_loss(features[CONTENT_LAYER], self.content_target)
        s = style_loss(features, self.style_grams)
        tv = total_variation(image)
        cfg = self.config
        return weighted_terms(c, s, tv, (cfg.content_weight, cfg.style_weight, cfg.tv_weight))


@dataclass
class _Tracker:
    """Iteration count, rate and progress reports across all scales."""

    config: RenderConfig
    progress: ProgressCallback | None
    cancel: CancelFlag | None
    meter: RateMeter
    done: int = 0


def render(
    config: RenderConfig,
    progress: ProgressCallback | None = None,
    cancel: CancelFlag | None = None,
) -> RenderResult:
    """Render the content image in the style of the style image and write it to config.output."""
    validate_render_config(config)
    started = time.monotonic()
    device = resolve_device(config.device)
    if device.type == "cpu" or config.threads is not None:
        configure_cpu_threads(config.threads)
    content = read_rgb(config.content)
    style = read_rgb(config.style_image)
    vgg = VGG19().to(device)
    tracker = _Tracker(config, progress, cancel, RateMeter(config.iterations))
    image: torch.Tensor | None = None
    losses: dict[str, float] = {}
    for size, iterations in scale_schedule(config.size, config.iterations, config.scales):
        target = _fit(content, size).to(device)  # (1, 3, h, w)
        style_t = _fit(style, max(MIN_SIZE, round(size * config.style_scale))).to(device)
        objective = GatysLoss(vgg, target, style_t, config)
        image = _start_image(image, target, config)
        image, losses = _optimise(image, objective, iterations, tracker)
    assert image is not None  # the schedule always holds at least one scale
    save_image(config.output, to_uint8(image))
    seconds = time.monotonic() - started
    log.info("rendered %s in %.1f s (loss %.4g)", config.output, seconds, losses.get("loss", 0.0))
    return RenderResult(output=Path(config.output), losses=losses, seconds=seconds)


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


def scale_schedule(size: int, iterations: int, scales: int) -> list[tuple[int, int]]:
    """(longest side, iterations) per scale, coarse to fine; the finest gets the remainder."""
    share = iterations // scales
    plan = [(size // 2 ** (scales - 1 - i), share) for i in range(scales)]
    plan[-1] = (size, iterations - share * (scales - 1))
    return [(s, n) for s, n in plan if n > 0]


def _fit(image: Image.Image, longest: int) -> torch.Tensor:
    """Resize so the longest side is `longest`, as (1, 3, H, W) float in [0, 1]."""
    return to_tensor(resize_longest(image, longest))


def _start_image(
    previous: torch.Tensor | None, content: torch.Tensor, config: RenderConfig
) -> torch.Tensor:
    """Content image (or seeded noise) at the first scale, else the previous result upsampled."""
    if previous is not None:
        size = content.shape[-2:]
        return F.interpolate(previous, size=size, mode="bilinear", align_corners=False).clamp(0, 1)
    if config.init == "noise":
        generator = torch.Generator().manual_seed(config.seed)
        return torch.rand(content.shape, generator=generator).to(content.device)
    return content.clone()


def _optimise(
    image: torch.Tensor, objective: GatysLoss, iterations: int, tracker: _Tracker
) -> tuple[torch.Tensor, dict[str, float]]:
    """Spend `iterations` loss evaluations on the pixels, clamped to [0, 1] before each."""
    pixels = image.detach().clone().contiguous().requires_grad_(True)  # (1, 3, H, W)
    optimizer = _make_optimizer(pixels, tracker.config)
    terms: dict[str, float] = {}
    closure = _closure(pixels, objective, optimizer, terms, tracker)
    end = tracker.done + iterations
    while tracker.done < end:
        if isinstance(optimizer, torch.optim.LBFGS):  # many iterations per step() call
            optimizer.param_groups[0].update(
                max_iter=end - tracker.done, max_eval=end - tracker.done
            )
        optimizer.step(closure)
    with torch.no_grad():
        pixels.clamp_(0, 1)
    return pixels.detach(), terms


def _make_optimizer(pixels: torch.Tensor, config: RenderConfig) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        return torch.optim.Adam([pixels], lr=config.lr)
    # The Gram loss is far from quadratic: without a line search L-BFGS overshoots into noise.
    # Tolerances 0: stop only when the evaluation budget is spent.
    return torch.optim.LBFGS(
        [pixels],
        lr=1.0,
        history_size=50,
        line_search_fn="strong_wolfe",
        tolerance_grad=0.0,
        tolerance_change=0.0,
    )


def _closure(
    pixels: torch.Tensor,
    objective: GatysLoss,
    optimizer: torch.optim.Optimizer,
    terms: dict[str, float],
    tracker: _Tracker,
) -> Callable[[], torch.Tensor]:
    """Loss and gradient at the clamped pixels; one call is one iteration (cancel, progress)."""

    def closure() -> torch.Tensor:
        check_cancel(tracker.cancel)
        with torch.no_grad():
            pixels.clamp_(0, 1)
        optimizer.zero_grad(set_to_none=True)
        values = objective(pixels)
        values["loss"].backward()
        terms.update({k: float(v.detach()) for k, v in values.items()})
        tracker.done += 1
        _report(tracker, pixels, terms)
        return values["loss"]

    return closure


def _report(tracker: _Tracker, pixels: torch.Tensor, terms: dict[str, float]) -> None:
    if tracker.progress is None:
        return
    cfg = tracker.config
    done = min(tracker.done, cfg.iterations)
    last = tracker.done == cfg.iterations
    wants = cfg.preview_every > 0 and tracker.done <= cfg.iterations
    wants = wants and (tracker.done % cfg.preview_every == 0 or last)
    rate, eta = tracker.meter.report(done)
    tracker.progress(
        Progress(
            done=done,
            total=cfg.iterations,
            eta_s=eta,
            rate=rate,
            metrics=dict(terms),
            preview=to_uint8(pixels) if wants else None,
        )
    )
