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
from .images import read_rgb, resize_longest, save_image, to_tensor, to_uint8
from .losses import content_loss, gram_matrix, style_loss, total_variation, weighted_terms
from .progress import CancelFlag, Progress, ProgressCallback, RateMeter, check_cancel
from .render_config import (
    MIN_SIZE,
    RenderConfig,
    RenderResult,
    validate_render_config,
)
from .vgg import VGG19

log = logging.getLogger(__name__)


CONTENT_LAYER = "relu4_2"
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


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
