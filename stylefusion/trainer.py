"""Fast style training (Johnson et al. 2016): a transformer learns one style against a VGG loss."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .checkpoint import TrainState, load_checkpoint, save_checkpoint
from .content import ContentImages
from .devices import configure_cpu_threads, cpu_name, resolve_device
from .errors import Cancelled
from .images import read_rgb, to_tensor, to_uint8
from .losses import content_loss, gram_matrix, style_loss, total_variation, weighted_terms
from .progress import CancelFlag, Progress, ProgressCallback, check_cancel
from .style_folder import save_transformer
from .train_config import TrainConfig, TrainResult, plain_value, validate_config
from .transformer_net import TransformerNet, build_transformer
from .vgg import VGG19

log = logging.getLogger(__name__)

CONTENT_LAYER = "relu2_2"
STYLE_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
EMA_BETA = 0.9  # smoothing of the reported final losses and of the spike guard's baseline
SPIKE_WARMUP = 20  # steps before the spike guard compares against the running average


class PerceptualLoss:
    """Content (relu2_2) + style (Grams at relu1_2..relu4_3) + total variation, weighted."""

    def __init__(self, vgg: VGG19, style_grams: dict[str, torch.Tensor], config: TrainConfig):
        self.vgg = vgg
        self.style_grams = style_grams  # name -> (1, C, C)
        self.config = config
        self.autocast: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()

    def __call__(self, output: torch.Tensor, content: torch.Tensor) -> dict[str, torch.Tensor]:
        """Loss terms for a stylized batch and its content batch, both (B, 3, H, W) in [0, 1]."""
        with self.autocast:
            with torch.no_grad():
                target = self.vgg(content, [CONTENT_LAYER])[CONTENT_LAYER]
            features = self.vgg(output, STYLE_LAYERS)
        features = {k: v.float() for k, v in features.items()}  # losses in fp32
        c = content_loss(features[CONTENT_LAYER], target.float())
        s = style_loss(features, self.style_grams)
        tv = total_variation(output)
        cfg = self.config
        return weighted_terms(c, s, tv, (cfg.content_weight, cfg.style_weight, cfg.tv_weight))


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
    started: float = field(default_factory=time.monotonic)
    start_step: int = 0
    start_elapsed: float = 0.0
    last_checkpoint: float = field(default_factory=time.monotonic)
    last: dict[str, float] = field(default_factory=dict)


def train(
    config: TrainConfig,
    progress: ProgressCallback | None = None,
    cancel: CancelFlag | None = None,
) -> TrainResult:
    """Train a fast-style transformer and write it (fp16) into output_dir/name."""
    validate_config(config)
    run = _setup(config)
    while not _budget_spent(run):
        try:
            check_cancel(cancel)
        except Cancelled:
            _checkpoint(run)
            log.info("training cancelled at step %d; checkpoint %s", run.state.step, _ckpt(run))
            raise
        _train_step(run)
        if time.monotonic() - run.last_checkpoint >= config.checkpoint_every_s:
            _checkpoint(run)
        if progress is not None:
            progress(_progress(run))
    _checkpoint(run)
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
    loss = PerceptualLoss(vgg, _style_grams(config, vgg), config)
    if config.mixed_precision if config.mixed_precision is not None else device.type == "cuda":
        loss.autocast = torch.autocast(device.type, dtype=torch.bfloat16)
    torch.manual_seed(config.seed)
    model = build_transformer(config.architecture or config.variant).to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    state = _restore(config, model, optimizer)
    run = _Run(config, device, model, optimizer, loss, data, data.preview_image().to(device), state)
    run.start_step, run.start_elapsed = state.step, state.elapsed_s
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


def _budget_spent(run: _Run) -> bool:
    total = run.config.total_steps
    if total is not None:
        return run.state.step >= total
    return run.state.elapsed_s >= float(run.config.seconds or 0.0)


def _budget_fraction(run: _Run) -> float:
    total = run.config.total_steps
    if total is not None:
        return min(1.0, run.state.step / total)
    return min(1.0, run.state.elapsed_s / float(run.config.seconds or 1.0))


def _learning_rate(run: _Run) -> float:
    """Exponential decay from lr to lr_final over the budget."""
    cfg = run.config
    return cfg.lr * (cfg.lr_final / cfg.lr) ** _budget_fraction(run)


def _train_step(run: _Run) -> None:
    """One optimisation step on a batch that depends only on (seed, step)."""
    cfg, state = run.config, run.state
    generator = torch.Generator().manual_seed(cfg.seed * 1_000_003 + state.step)
    batch = run.data.sample(cfg.batch_size, generator).to(run.device)  # (B, 3, size, size)
    lr = _learning_rate(run)
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    run.optimizer.zero_grad(set_to_none=True)
    terms = run.loss(run.model(batch), batch)
    values = {k: float(v.detach()) for k, v in terms.items()}
    if _is_spike(run, values["loss"]):
        state.skipped += 1
        log.warning(
            "step %d skipped: loss %.4g is not finite or spiked", state.step, values["loss"]
        )
    else:
        terms["loss"].backward()
        run.optimizer.step()
        _update_ema(state, values)
    state.step += 1
    state.elapsed_s = run.start_elapsed + time.monotonic() - run.started
    run.last = {**values, "lr": lr, "skipped": float(state.skipped)}


def _is_spike(run: _Run, loss: float) -> bool:
    """Non-finite, or far above the running average once it has settled."""
    if not math.isfinite(loss):
        return True
    state = run.state
    return state.ema_count >= SPIKE_WARMUP and loss > run.config.spike_factor * state.ema["loss"]


def _update_ema(state: TrainState, values: dict[str, float]) -> None:
    for key, value in values.items():
        old = state.ema.get(key, value)
        state.ema[key] = EMA_BETA * old + (1 - EMA_BETA) * value
    state.ema_count += 1


def _ckpt(run: _Run) -> Path:
    return run.config.checkpoint_file


def _checkpoint(run: _Run) -> None:
    fingerprint = _fingerprint(run.config, run.model)
    save_checkpoint(_ckpt(run), run.model, run.optimizer, run.state, fingerprint)
    run.last_checkpoint = time.monotonic()


def _progress(run: _Run) -> Progress:
    """Step, estimated total, images/s, ETA, last losses and (every preview_every) a preview."""
    cfg, step = run.config, run.state.step
    session_s = max(1e-9, time.monotonic() - run.started)
    steps_per_s = (step - run.start_step) / session_s
    total = cfg.total_steps
    if total is None:  # seconds budget: extrapolate the step count
        eta = max(0.0, float(cfg.seconds or 0.0) - run.state.elapsed_s)
        total = max(step, step + round(eta * steps_per_s))
    else:
        eta = (total - step) / steps_per_s if steps_per_s > 0 else None
    last_step = _budget_spent(run)
    wants_preview = cfg.preview_every > 0 and (step % cfg.preview_every == 0 or last_step)
    return Progress(
        done=step,
        total=total,
        eta_s=eta,
        rate=steps_per_s * cfg.batch_size,
        metrics=dict(run.last),
        preview=preview(run.model, run.preview_input) if wants_preview else None,
    )


def preview(model: TransformerNet, image: torch.Tensor) -> Any:
    """The model's output for one (1, 3, H, W) image, as (H, W, 3) uint8 RGB."""
    with torch.no_grad():
        return to_uint8(model(image))


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
        "device": _device_info(run.device),
        "command": cfg.command,
    }


def _device_info(device: torch.device) -> dict[str, str]:
    """Which machine and chip trained the style."""
    chip = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    return {
        "type": device.type,
        "name": chip,
        "machine": platform.node(),
        "torch": torch.__version__,
    }


__all__ = ["PerceptualLoss", "TrainConfig", "TrainResult", "preview", "train", "validate_config"]
