"""A new style in minutes: fit only a painting's norms against a stored shared backbone.

The backbone's convolutions stay frozen (unless fine_tune), so the new style is a few KB of
(gamma, beta) that start from the nearest style already on that backbone (by Gram distance to
its painting) and converge in a couple of hundred steps; a budget too small to converge is
refused before any work, and a run that still ends unconverged is not published.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from .architecture import VARIANTS, TransformerConfig
from .backbone import BACKBONE_FILE, backbone_dir
from .devices import configure_cpu_threads, resolve_device
from .errors import BudgetTooSmall, InvalidInput, StyleFormatError
from .multistyle_trainer import train_styles
from .perceptual import STYLE_LAYERS, PerceptualLoss
from .progress import CancelFlag, ProgressCallback
from .style_folder import StyleInfo, list_styles
from .train_config import (
    FIT_BATCH,
    FIT_SIZE,
    FIT_STEPS,
    MIN_FIT_STEPS,
    Convergence,
    MotionConfig,
    MultiStyleConfig,
    StyleSource,
    TrainConfig,
    TrainResult,
    validate_config,
)
from .transformer_net import TransformerNet
from .vgg import VGG19
from .yardstick import style_grams

log = logging.getLogger(__name__)

NORMS_LR_SCALE = 10.0  # norms take 10x the convolutions' rate: 1e-2 decaying to 1e-3
GRAM_SIZE = 256  # short side of the paintings compared to find the nearest style


@dataclass(frozen=True)
class SharedBackbone:
    """A stored backbone and the styles of a models dir that use it."""

    id: str
    config: TransformerConfig
    styles: tuple[StyleInfo, ...]
    variant: str = "lite"


def new_style_config(
    style_image: Path, content_dir: Path, name: str, backbone: str, **changes: object
) -> TrainConfig:
    """The default new-style job: small crops, a few hundred images, norms only."""
    defaults: dict[str, object] = {
        "variant": "lite",
        "size": FIT_SIZE,
        "batch_size": FIT_BATCH,
        "steps": FIT_STEPS,
        "preview_every": 25,
    }
    if changes.get("seconds") is not None:
        defaults.pop("steps")  # a seconds budget replaces the default step budget
    return TrainConfig(
        style_image=Path(style_image),
        content_dir=Path(content_dir),
        name=name,
        backbone=backbone,
        **{**defaults, **changes},  # type: ignore[arg-type]
    )


def shared_backbone(models_dir: Path, ref: str, variant: str = "lite") -> SharedBackbone:
    """The backbone named by its id or by a style that uses it, and all its styles."""
    styles = [s for s in list_styles(models_dir) if variant in s.variants]
    by_name = {s.name: s for s in styles}
    backbone_id = by_name[ref].backbone_id(variant) if ref in by_name else ref
    if backbone_id is None:
        raise InvalidInput(f"style {ref!r} is a single-style network, not a shared backbone")
    users = tuple(s for s in styles if s.backbone_id(variant) == backbone_id)
    if not users or not (backbone_dir(models_dir, backbone_id) / BACKBONE_FILE).is_file():
        raise InvalidInput(f"no shared backbone {ref!r} with styles in {models_dir}")
    return SharedBackbone(backbone_id, users[0].config(variant), users, variant)


def find_backbone(models_dir: Path, ref: str, variant: str | None = None) -> SharedBackbone:
    """shared_backbone() of whichever variant has `ref` (the given one only, if any)."""
    variants = [variant] if variant else ["lite", *(v for v in VARIANTS if v != "lite")]
    problem: InvalidInput | None = None
    for name in variants:
        try:
            return shared_backbone(models_dir, ref, name)
        except InvalidInput as exc:
            problem = problem or exc
    assert problem is not None
    raise problem


def default_backbone(models_dir: Path, variant: str | None = None) -> SharedBackbone | None:
    """The backbone most styles of models_dir share (of `variant` only, if given; ties: the
    lite one, then by id); None where no style is on a stored shared backbone."""
    counts: dict[tuple[str, str], int] = {}
    for info in list_styles(models_dir):
        for name in info.variants if variant is None else (variant,):
            backbone_id = info.backbone_id(name) if name in info.variants else None
            if backbone_id and (backbone_dir(models_dir, backbone_id) / BACKBONE_FILE).is_file():
                counts[(name, backbone_id)] = counts.get((name, backbone_id), 0) + 1
    if not counts:
        return None
    name, backbone_id = min(counts, key=lambda k: (-counts[k], k[0] != "lite", k[1]))
    return shared_backbone(models_dir, backbone_id, name)


def nearest_style(painting: Path, styles: tuple[StyleInfo, ...], vgg: VGG19) -> StyleInfo:
    """The style whose painting's Grams are closest to this one's (the style loss between
    them); styles without a style image are skipped (the first style if none has one)."""
    target = style_grams(vgg, painting, GRAM_SIZE)
    best, best_distance = styles[0], float("inf")
    for info in styles:
        if info.style_image is None:
            continue
        theirs = style_grams(vgg, info.style_image, GRAM_SIZE)
        distance = sum(float((theirs[k] - target[k]).square().mean()) for k in target)
        if distance < best_distance:
            best, best_distance = info, distance
    return best


def estimate_step_seconds(
    config: TrainConfig, architecture: TransformerConfig, norms_only: bool = True
) -> float:
    """Seconds one training step takes on this device, timed on two steps (after one to warm
    up) of the run's real work: the transformer, the loss network and the backward pass (to
    the norms only, or with norms_only=False to every weight, as a fine-tune or a network of
    its own trains)."""
    device = resolve_device(config.device)
    if device.type == "cpu" or config.threads is not None:
        configure_cpu_threads(config.threads)
    vgg = VGG19().to(device)
    grams = {k: torch.zeros(1, v.shape[1], v.shape[1]) for k, v in _probe_grams(vgg).items()}
    loss = PerceptualLoss(vgg, {k: g.to(device) for k, g in grams.items()}, (1.0, 5.0, 1.0))
    model = TransformerNet(dataclasses.replace(architecture, styles=1)).to(device)
    model.requires_grad_(not norms_only).style_table.requires_grad_(True)
    batch = torch.rand(config.batch_size, 3, config.size, config.size, device=device)
    timings = []
    for _ in range(3):
        start = time.perf_counter()
        out = model(batch, model.style_norms([0] * config.batch_size))
        loss(out, batch)["loss"].backward()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        timings.append(time.perf_counter() - start)
    return min(timings[1:])


def _probe_grams(vgg: VGG19) -> dict[str, torch.Tensor]:
    """Features of a tiny image: the loss network's layer widths."""
    with torch.no_grad():
        return vgg(torch.rand(1, 3, 32, 32, device=vgg.mean.device), STYLE_LAYERS)


def check_budget(config: TrainConfig, step_seconds: float | None = None) -> None:
    """Refuse, naming the minimum, a budget below what converges: MIN_FIT_STEPS steps (for a
    seconds budget, that many steps at `step_seconds`, this device's measured rate)."""
    if config.steps is not None and config.steps < MIN_FIT_STEPS:
        raise BudgetTooSmall(
            f"a new style needs at least {MIN_FIT_STEPS} steps to converge, not {config.steps}",
            MIN_FIT_STEPS,
        )
    if config.seconds is not None and step_seconds is not None:
        needed = MIN_FIT_STEPS * step_seconds
        if config.seconds < needed:
            raise BudgetTooSmall(
                f"a new style needs at least {needed:.0f} s on this machine "
                f"({MIN_FIT_STEPS} steps of {step_seconds:.2f} s), not {config.seconds:g}",
                MIN_FIT_STEPS,
                float(math.ceil(needed)),
            )


def fit_style(
    config: TrainConfig,
    progress: ProgressCallback | None = None,
    cancel: CancelFlag | None = None,
) -> TrainResult:
    """Train config.name's norms against config.backbone and write the style (if converged)."""
    validate_config(config)
    backbone = shared_backbone(config.output_dir, str(config.backbone), config.variant)
    check_budget(config)
    if config.seconds is not None:
        check_budget(config, estimate_step_seconds(config, backbone.config))
    start = nearest_style(config.style_image, backbone.styles, VGG19())
    log.info("new style %s starts from the norms of %s", config.name, start.name)
    multi = _multistyle_config(config, backbone, start)
    result = train_styles(multi, progress, cancel)
    folder = result.folders[0]
    return TrainResult(folder, result.steps, result.seconds, result.losses[config.name])


def _multistyle_config(
    config: TrainConfig, backbone: SharedBackbone, start: StyleInfo
) -> MultiStyleConfig:
    """The one-style multi-style run that fits the new style's norms."""
    if config.architecture is not None and config.architecture != backbone.config:
        raise StyleFormatError(f"backbone {backbone.id} has another architecture")
    source = StyleSource(config.name, config.style_image, config.display_name, start.path)
    return MultiStyleConfig(
        styles=(source,),
        content_dir=config.content_dir,
        output_dir=config.output_dir,
        variant=config.variant,
        architecture=dataclasses.replace(backbone.config, styles=0),
        steps=config.steps,
        seconds=config.seconds,
        size=config.size,
        batch_size=config.batch_size,
        style_weight=config.style_weight,
        content_weight=config.content_weight,
        tv_weight=config.tv_weight,
        motion=MotionConfig(),
        lr=config.lr,
        lr_final=config.lr_final,
        norms_lr_scale=1.0 if config.fine_tune else NORMS_LR_SCALE,
        backbone=backbone.id,
        freeze_backbone=not config.fine_tune,
        device=config.device,
        resume=config.resume,
        seed=config.seed,
        checkpoint_every_s=config.checkpoint_every_s,
        checkpoint_path=config.checkpoint_file,
        preview_every=config.preview_every,
        threads=config.threads,
        overwrite=True,  # validate_config already refused an unasked replacement
        style_size=config.style_size,
        mixed_precision=config.mixed_precision,
        spike_factor=config.spike_factor,
        max_images=config.max_images,
        command=config.command,
        notes=(("init", f"norms started from style {start.name!r} (nearest by Gram distance)"),),
        convergence=Convergence(),
    )
