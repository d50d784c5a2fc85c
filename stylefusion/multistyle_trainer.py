"""Multi-style training (Dumoulin et al. 2017): N paintings, one network, one norm row each.

Every batch mixes styles (sample i of step t gets style (t * B + i) mod N, so each style is
seen equally often) and each sample is scored against its own style's Grams. The shared
convolutions may start from a trained single-style network and each style's norms from its
own, which gives a trained start; with the backbone frozen only the norms are fitted (a new
style against a shipped backbone, in minutes).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .backbone import BACKBONE_FILE, backbone_dir, read_backbone, write_backbone
from .checkpoint import TrainState, load_checkpoint, save_checkpoint
from .content import ContentImages
from .convergence import check_converged, record_start
from .devices import configure_cpu_threads, resolve_device
from .errors import InvalidInput
from .losses import total_variation, weighted_terms
from .perceptual import STYLE_LAYERS, PerceptualLoss, use_bf16_loss
from .progress import CancelFlag, Progress, ProgressCallback
from .style_folder import load_shared_style, load_transformer, read_style, save_shared_style
from .temporal import temporal_loss
from .train_config import MultiStyleConfig, plain_value, validate_multistyle
from .train_loop import (
    Session,
    budget_spent,
    device_info,
    learning_rate,
    preview,
    progress_report,
    run_loop,
)
from .transformer_net import TransformerNet, affine_norms, backbone_state
from .vgg import VGG19
from .yardstick import style_grams

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MultiStyleResult:
    """What a finished run wrote: one style folder per style, all naming one backbone."""

    folders: tuple[Path, ...]
    backbone_id: str
    steps: int
    seconds: float
    losses: dict[str, dict[str, float]]  # style name -> its smoothed final loss terms


@dataclass
class _Run:
    """The live objects of one multi-style run."""

    config: MultiStyleConfig
    device: torch.device
    model: TransformerNet
    optimizer: torch.optim.Optimizer
    loss: PerceptualLoss
    data: ContentImages
    preview_input: torch.Tensor  # (1, 3, size, size) on device
    state: TrainState
    init: dict[str, Any]  # where the weights started, for meta.json
    session: Session = field(default_factory=Session)


def train_styles(
    config: MultiStyleConfig,
    progress: ProgressCallback | None = None,
    cancel: CancelFlag | None = None,
) -> MultiStyleResult:
    """Train one network for every style of the config and write each style's folder."""
    validate_multistyle(config)
    run = _setup(config)

    def after_step() -> None:
        every = config.snapshot_every
        if every and run.state.step % every == 0 and not budget_spent(config, run.state):
            write_styles(run, Path(config.snapshot_dir or config.output_dir))
        if progress is not None:
            progress(_progress(run))

    run_loop(
        config, run.state, lambda: _train_step(run), lambda: _checkpoint(run), after_step, cancel
    )
    if config.convergence is not None:
        check_converged(run.state, config.convergence, config.style_weight)
    result = write_styles(run, Path(config.output_dir))
    config.checkpoint_file.unlink(missing_ok=True)
    return result


def _setup(config: MultiStyleConfig) -> _Run:
    """Device, data, loss network, every style's Grams, model and optimizer."""
    device = resolve_device(config.device)
    if device.type == "cpu" or config.threads is not None:
        configure_cpu_threads(config.threads)
    data = ContentImages(config.content_dir, config.size, config.max_images, config.seed)
    loss = _perceptual_loss(config, device)
    torch.manual_seed(config.seed)
    model = TransformerNet(config.network)
    init = _initialise(model, config)
    model = model.to(device).train()
    optimizer = _optimizer(model, config)
    state = _restore(config, model, optimizer)
    preview_input = data.preview_image().to(device)
    run = _Run(config, device, model, optimizer, loss, data, preview_input, state, init)
    run.session = Session.resuming(state)
    return run


def _perceptual_loss(config: MultiStyleConfig, device: torch.device) -> PerceptualLoss:
    """The VGG loss with every style's Grams, in the layout and precision the config asks."""
    vgg = VGG19().to(device)
    if config.channels_last:
        vgg = vgg.to(memory_format=torch.channels_last)
    weights = (config.content_weight, config.style_weight, config.tv_weight)
    grams = stacked_grams(vgg, [s.style_image for s in config.styles], config.style_size)
    loss = PerceptualLoss(vgg, grams, weights, channels_last=config.channels_last)
    if use_bf16_loss(config.mixed_precision, device):
        loss.autocast = torch.autocast(device.type, dtype=torch.bfloat16)
    return loss


def stacked_grams(vgg: VGG19, images: list[Path], size: int) -> dict[str, torch.Tensor]:
    """layer -> (N, C, C): the target Grams of each style image, in order."""
    per_style = [style_grams(vgg, image, size) for image in images]
    return {name: torch.cat([g[name] for g in per_style]) for name in STYLE_LAYERS}


def _initialise(model: TransformerNet, config: MultiStyleConfig) -> dict[str, Any]:
    """Copy in the starting convolutions and norms the config names; freeze if asked."""
    init: dict[str, Any] = {}
    start = _starting_backbone(config)
    if start is not None:
        source, state = start
        model.load_state_dict(state, strict=False)
        init["backbone"] = source
    with torch.no_grad():
        for row, style in enumerate(config.styles):
            if style.init_from is not None:
                model.style_table[row] = style_norms_of(Path(style.init_from), config.variant)
                init[f"norms/{style.name}"] = plain_value(Path(style.init_from))
    if config.freeze_backbone:
        for name, param in model.named_parameters():
            param.requires_grad_(name == "style_table")
    return init


def _starting_backbone(config: MultiStyleConfig) -> tuple[str, dict[str, torch.Tensor]] | None:
    """(where from, shared weights) of the backbone the run starts from, if it names one."""
    if config.backbone is not None:
        path = backbone_dir(config.output_dir, config.backbone) / BACKBONE_FILE
        if not path.is_file():
            raise InvalidInput(f"no backbone {config.backbone} in {config.output_dir}")
        stored = read_backbone(path, config.backbone, config.network)
        return f"backbone {config.backbone}", backbone_state(stored)
    if config.init_backbone is not None:
        folder = Path(config.init_backbone)
        info = read_style(folder)
        if config.variant not in info.variants:
            raise InvalidInput(f"{folder} has no {config.variant!r} network to start from")
        return plain_value(folder), backbone_state(load_transformer(folder, config.variant))
    return None


def style_norms_of(folder: Path, variant: str) -> torch.Tensor:
    """(P,) norms of a style folder's variant: a multi-style style's own, or the affine
    params of a single-style network."""
    info = read_style(folder)
    if info.backbone_id(variant) is not None:
        return load_shared_style(folder, variant).norms
    return affine_norms(load_transformer(folder, variant))


def _optimizer(model: TransformerNet, config: MultiStyleConfig) -> torch.optim.Optimizer:
    """Adam over what is trained: the norms (scaled learning rate) and the convolutions."""
    convs = [p for n, p in model.named_parameters() if n != "style_table" and p.requires_grad]
    groups = [{"params": [model.style_table], "scale": config.norms_lr_scale}]
    if convs:
        groups.append({"params": convs, "scale": 1.0})
    return torch.optim.Adam(groups, lr=config.lr)


def _fingerprint(config: MultiStyleConfig, model: TransformerNet) -> dict[str, Any]:
    """Settings a checkpoint must share with the run that resumes it."""
    return {
        "architecture": model.config.to_dict(),
        "styles": [s.name for s in config.styles],
        "size": config.size,
        "batch_size": config.batch_size,
        "seed": config.seed,
        "freeze_backbone": config.freeze_backbone,
    }


def _restore(
    config: MultiStyleConfig, model: TransformerNet, optimizer: torch.optim.Optimizer
) -> TrainState:
    """Load the checkpoint when resuming and there is one; otherwise a fresh TrainState."""
    path = config.checkpoint_file
    if not config.resume or not path.is_file():
        if config.resume:
            log.info("no checkpoint at %s; starting from scratch", path)
        return TrainState()
    state = load_checkpoint(path, model, optimizer, _fingerprint(config, model))
    log.info("resuming from step %d (%s)", state.step, path)
    return state


def _checkpoint(run: _Run) -> None:
    fingerprint = _fingerprint(run.config, run.model)
    save_checkpoint(run.config.checkpoint_file, run.model, run.optimizer, run.state, fingerprint)


def _train_step(run: _Run) -> None:
    """One optimisation step on a batch that depends only on (seed, step)."""
    cfg, state = run.config, run.state
    generator = torch.Generator().manual_seed(cfg.seed * 1_000_003 + state.step)
    batch = run.data.sample(cfg.batch_size, generator).to(run.device)  # (B, 3, size, size)
    index = (torch.arange(cfg.batch_size) + state.step * cfg.batch_size) % len(cfg.styles)
    lr = learning_rate(cfg, state)
    for group in run.optimizer.param_groups:
        group["lr"] = lr * group["scale"]
    run.optimizer.zero_grad(set_to_none=True)
    terms, values = _losses(run, batch, index.to(run.device), generator)
    if state.is_spike(values["loss"], cfg.spike_factor):
        state.skipped += 1
        log.warning("step %d skipped: loss %.4g not finite or spiked", state.step, values["loss"])
    else:
        terms["loss"].backward()
        run.optimizer.step()
        state.update_ema(values)
        record_start(state)
    run.session.tick(state)
    run.session.last = {k: v for k, v in values.items() if "/" not in k}
    run.session.last.update(lr=lr, skipped=float(state.skipped))


def _losses(
    run: _Run, batch: torch.Tensor, index: torch.Tensor, generator: torch.Generator
) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    """The weighted loss terms of a batch, and their values (also per style, 'name/term')."""
    cfg, model = run.config, run.model
    norms = model.style_norms(index)  # (B, P)
    output = model(batch, norms)
    content, style = run.loss.per_sample(output, batch, index)  # (B,) each
    tv = total_variation(output)
    terms = weighted_terms(content.mean(), style.mean(), tv, run.loss.weights)
    each = {"content": content, "style": style}
    if cfg.motion.weight > 0:
        moved = temporal_loss(lambda x: model(x, norms), batch, output, cfg.motion, generator)
        terms["temporal"] = moved
        terms["loss"] = terms["loss"] + cfg.motion.weight * moved
    values = {k: float(v.detach()) for k, v in terms.items()}
    for i, row in enumerate(index.tolist()):
        for term, per_sample in each.items():
            values[f"{cfg.styles[row].name}/{term}"] = float(per_sample[i].detach())
    return terms, values


def _progress(run: _Run) -> Progress:
    """The loop's progress report; its preview shows the fixed sample in every style."""
    return progress_report(run.config, run.state, run.session, lambda: _preview(run))


def _preview(run: _Run) -> Any:
    """(H, N * W, 3) uint8: the preview sample in each style, side by side."""
    model, x = run.model, run.preview_input
    rows = [preview(_Styled(model, i), x) for i in range(len(run.config.styles))]
    return np.concatenate(rows, axis=1)


class _Styled(torch.nn.Module):
    """A multi-style network fixed to one style (a plain image-to-image module)."""

    def __init__(self, model: TransformerNet, index: int) -> None:
        super().__init__()
        self.model, self.index = model, index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        norms = self.model.style_norms([self.index] * x.shape[0])
        return self.model(x, norms)


def write_styles(run: _Run, models_dir: Path) -> MultiStyleResult:
    """Store the backbone once and every style's folder (its norms) in models_dir."""
    cfg, state, model = run.config, run.state, run.model
    training = _training_meta(run)
    backbone_id = write_backbone(models_dir, model, {"styles": [s.name for s in cfg.styles]})
    folders, losses = [], {}
    for row, style in enumerate(cfg.styles):
        losses[style.name] = {
            term: state.ema[f"{style.name}/{term}"]
            for term in ("content", "style")
            if f"{style.name}/{term}" in state.ema
        }
        folder = models_dir / style.name
        save_shared_style(
            folder, cfg.variant, model, model.style_table[row].detach().cpu(), backbone_id,
            name=style.name, display_name=style.display_name, training=training,
            losses=losses[style.name], style_image=style.style_image,
        )  # fmt: skip
        folders.append(folder)
    log.info("%d styles on backbone %s written to %s", len(folders), backbone_id, models_dir)
    return MultiStyleResult(tuple(folders), backbone_id, state.step, state.elapsed_s, losses)


def _training_meta(run: _Run) -> dict[str, Any]:
    """Config values, where the weights started, steps, time, machine, command and why."""
    cfg = run.config
    values = {
        f.name: _plain(getattr(cfg, f.name))
        for f in dataclasses.fields(cfg)
        if f.name not in ("command", "notes")
    }
    return {
        "config": values,
        "init": run.init,
        "steps": run.state.step,
        "skipped_steps": run.state.skipped,
        "seconds": round(run.state.elapsed_s, 3),
        "device": device_info(run.device),
        "command": cfg.command,
        "why": dict(cfg.notes),
    }


def _plain(value: Any) -> Any:
    """JSON-ready: nested configs as dicts, tuples as lists, paths portable."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        if hasattr(value, "to_dict"):
            return value.to_dict()
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return plain_value(value)
