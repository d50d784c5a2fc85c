"""Fast style training (Johnson et al. 2016): a transformer learns one style against a VGG loss."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .checkpoint import TrainState, load_checkpoint, save_checkpoint
from .content import ContentImages
from .devices import configure_cpu_threads, resolve_device
from .images import read_rgb, to_tensor
from .losses import gram_matrix
from .perceptual import STYLE_LAYERS, PerceptualLoss, use_bf16_loss
from .progress import CancelFlag, Progress, ProgressCallback
from .style_fit import fit_style
from .style_folder import save_transformer
from .train_config import TrainConfig, TrainResult, plain_value, validate_config
from .train_loop import Session, device_info, learning_rate, preview, progress_report, run_loop
from .transformer_net import TransformerNet, build_transformer
from .vgg import VGG19

log = logging.getLogger(__name__)


@dataclass
class _Run:
    """The live objects of one training run."""

    config: TrainConfig
    device: torch.device
    model: TransformerNet
    optimizer: torch.optim.Optimizer
    loss: PerceptualLoss
    data: ContentImages
    preview_input: torch.Tensor  # (1, 3, size, size) on device
    state: TrainState
    session: Session = field(default_factory=Session)


def train(
    config: TrainConfig,
    progress: ProgressCallback | None = None,
    cancel: CancelFlag | None = None,
) -> TrainResult:
    """Train a fast-style transformer and write it (fp16) into output_dir/name; with
    config.backbone, fit a new style's norms against that shared backbone instead."""
    if config.backbone is not None:
        return fit_style(config, progress, cancel)
    validate_config(config)
    run = _setup(config)

    def report() -> None:
        if progress is not None:
            progress(_progress(run))

    run_loop(config, run.state, lambda: _train_step(run), lambda: _checkpoint(run), report, cancel)
    return _finish(run)


def _setup(config: TrainConfig) -> _Run:
    """Device, data, loss network, style Grams, model and optimizer (restored if resuming)."""
    device = resolve_device(config.device)
    if device.type == "cpu" or config.threads is not None:
        configure_cpu_threads(config.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed crop size; exact resume is a CPU promise
    data = ContentImages(config.content_dir, config.size, config.max_images, config.seed)
    vgg = VGG19().to(device)
    weights = (config.content_weight, config.style_weight, config.tv_weight)
    loss = PerceptualLoss(vgg, _style_grams(config, vgg), weights)
    if use_bf16_loss(config.mixed_precision, device):
        loss.autocast = torch.autocast(device.type, dtype=torch.bfloat16)
    torch.manual_seed(config.seed)
    model = build_transformer(config.architecture or config.variant).to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    state = _restore(config, model, optimizer)
    run = _Run(config, device, model, optimizer, loss, data, data.preview_image().to(device), state)
    run.session = Session.resuming(state)
    return run


def _style_grams(config: TrainConfig, vgg: VGG19) -> dict[str, torch.Tensor]:
    """Target Gram matrices of the style image at style_size (short side), in fp32."""
    image = read_rgb(config.style_image, config.style_size, upscale=True)
    style = to_tensor(image).to(vgg.mean.device)  # (1, 3, H, W)
    with torch.no_grad():
        return {name: gram_matrix(f) for name, f in vgg(style, STYLE_LAYERS).items()}


def _fingerprint(config: TrainConfig, model: TransformerNet) -> dict[str, Any]:
    """Settings a checkpoint must share with the run that resumes it."""
    return {
        "architecture": model.config.to_dict(),
        "size": config.size,
        "batch_size": config.batch_size,
        "seed": config.seed,
    }


def _restore(
    config: TrainConfig, model: TransformerNet, optimizer: torch.optim.Optimizer
) -> TrainState:
    """Load the checkpoint when resuming and there is one; otherwise a fresh TrainState."""
    path = config.checkpoint_file
    if not config.resume:
        return TrainState()
    if not path.is_file():
        log.info("no checkpoint at %s; starting from scratch", path)
        return TrainState()
    state = load_checkpoint(path, model, optimizer, _fingerprint(config, model))
    log.info("resuming from step %d (%s)", state.step, path)
    return state


def _train_step(run: _Run) -> None:
    """One optimisation step on a batch that depends only on (seed, step)."""
    cfg, state = run.config, run.state
    generator = torch.Generator().manual_seed(cfg.seed * 1_000_003 + state.step)
    batch = run.data.sample(cfg.batch_size, generator).to(run.device)  # (B, 3, size, size)
    lr = learning_rate(cfg, state)
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    run.optimizer.zero_grad(set_to_none=True)
    terms = run.loss(run.model(batch), batch)
    values = {k: float(v.detach()) for k, v in terms.items()}
    if state.is_spike(values["loss"], cfg.spike_factor):
        state.skipped += 1
        log.warning(
            "step %d skipped: loss %.4g is not finite or spiked", state.step, values["loss"]
        )
    else:
        terms["loss"].backward()
        run.optimizer.step()
        state.update_ema(values)
    run.session.tick(state)
    run.session.last = {**values, "lr": lr, "skipped": float(state.skipped)}


def _ckpt(run: _Run) -> Path:
    return run.config.checkpoint_file


def _checkpoint(run: _Run) -> None:
    fingerprint = _fingerprint(run.config, run.model)
    save_checkpoint(_ckpt(run), run.model, run.optimizer, run.state, fingerprint)


def _progress(run: _Run) -> Progress:
    """The loop's progress report, with a preview of the fixed sample."""
    return progress_report(
        run.config, run.state, run.session, lambda: preview(run.model, run.preview_input)
    )


def _finish(run: _Run) -> TrainResult:
    """Write the variant (fp16) into the style folder, then drop the checkpoint."""
    cfg, state = run.config, run.state
    folder = Path(cfg.output_dir) / cfg.name
    losses = {k: state.ema[k] for k in ("loss", "content", "style", "tv") if k in state.ema}
    save_transformer(
        folder,
        cfg.variant,
        run.model,
        name=cfg.name,
        display_name=cfg.display_name,
        training=_training_meta(run),
        losses=losses,
        style_image=cfg.style_image,
    )
    _ckpt(run).unlink(missing_ok=True)
    log.info("style %s (%s) written after %d steps", folder, cfg.variant, state.step)
    return TrainResult(folder=folder, steps=state.step, seconds=state.elapsed_s, losses=losses)


def _training_meta(run: _Run) -> dict[str, Any]:
    """Config values, steps, time, machine and command, as recorded in meta.json."""
    cfg = run.config
    values = {
        f.name: plain_value(getattr(cfg, f.name))
        for f in dataclasses.fields(cfg)
        if f.name != "command"
    }
    return {
        "config": values,
        "steps": run.state.step,
        "skipped_steps": run.state.skipped,
        "seconds": round(run.state.elapsed_s, 3),
        "device": device_info(run.device),
        "command": cfg.command,
    }


__all__ = ["PerceptualLoss", "TrainConfig", "TrainResult", "preview", "train", "validate_config"]
