"""Fast style training (Johnson et al. 2016): a transformer learns one style against a VGG loss."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .checkpoint import TrainState, load_checkpoint, save_checkpoint
from .content import ContentImages
from .devices import configure_cpu_threads, cpu_has_bf16, cpu_name, resolve_device
from .images import read_rgb, to_tensor, to_uint8
from .losses import content_loss, gram_matrix, style_loss, total_variation, weighted_terms
from .progress import CancelFlag, Progress, ProgressCallback
from .style_folder import save_transformer
from .train_config import TrainConfig, TrainResult, plain_value, validate_config
from .train_loop import Session, learning_rate, progress_report, run_loop
from .transformer_net import TransformerNet, build_transformer
from .vgg import VGG19

log = logging.getLogger(__name__)

CONTENT_LAYER = "relu2_2"
STYLE_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")


class PerceptualLoss:
    """Content (relu2_2) + style (Grams at relu1_2..relu4_3) + total variation, weighted."""

    def __init__(
        self,
        vgg: VGG19,
        style_grams: dict[str, torch.Tensor],
        weights: tuple[float, float, float],
        channels_last: bool = False,
    ) -> None:
        self.vgg = vgg
        self.style_grams = style_grams  # name -> (N, C, C): one Gram per style
        self.weights = weights  # (content, style, tv)
        self.channels_last = channels_last
        self.autocast: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()

    def __call__(
        self,
        output: torch.Tensor,
        content: torch.Tensor,
        style_index: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Loss terms for a stylized batch and its content batch, both (B, 3, H, W) in [0, 1];
        style_index (B,) picks each sample's style (default: the one style)."""
        c, s = self.per_sample(output, content, style_index)
        return weighted_terms(c.mean(), s.mean(), total_variation(output), self.weights)

    def per_sample(
        self, output: torch.Tensor, content: torch.Tensor, style_index: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B,) content and (B,) style terms, each sample against its own style's Grams."""
        if self.channels_last:
            output = output.contiguous(memory_format=torch.channels_last)
            content = content.contiguous(memory_format=torch.channels_last)
        with self.autocast:
            with torch.no_grad():
                target = self.vgg(content, [CONTENT_LAYER])[CONTENT_LAYER]
            features = self.vgg(output, STYLE_LAYERS)
        features = {k: v.float() for k, v in features.items()}  # losses in fp32
        grams = self.style_grams
        if style_index is not None:
            grams = {k: g[style_index] for k, g in grams.items()}  # (B, C, C)
        c = content_loss(features[CONTENT_LAYER], target.float(), per_sample=True)
        return c, style_loss(features, grams, per_sample=True)


def use_bf16_loss(config_value: bool | None, device: torch.device) -> bool:
    """Whether the VGG loss network runs under bf16 autocast: as asked, else where the device
    computes bf16 natively (CUDA, or a CPU with AVX-512 BF16 / AMX)."""
    if config_value is not None:
        return config_value
    return device.type == "cuda" or cpu_has_bf16()


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
    """Train a fast-style transformer and write it (fp16) into output_dir/name."""
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
        "device": device_info(run.device),
        "command": cfg.command,
    }


def device_info(device: torch.device) -> dict[str, str]:
    """Which machine and chip trained the style."""
    chip = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    return {
        "type": device.type,
        "name": chip,
        "machine": platform.node(),
        "torch": torch.__version__,
    }


__all__ = ["PerceptualLoss", "TrainConfig", "TrainResult", "preview", "train", "validate_config"]
