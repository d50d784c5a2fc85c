"""What every training loop shares: the budget, the learning-rate schedule, progress reports."""

from __future__ import annotations

import logging
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from .checkpoint import TrainState
from .devices import cpu_name
from .errors import Cancelled
from .images import to_uint8
from .progress import CancelFlag, Progress, check_cancel

log = logging.getLogger(__name__)


class LoopSettings(Protocol):
    """The settings a loop reads (TrainConfig and MultiStyleConfig both have them)."""

    @property
    def total_steps(self) -> int | None: ...
    @property
    def seconds(self) -> float | None: ...
    @property
    def lr(self) -> float: ...
    @property
    def lr_final(self) -> float: ...
    @property
    def batch_size(self) -> int: ...
    @property
    def preview_every(self) -> int: ...
    @property
    def checkpoint_every_s(self) -> float: ...


@dataclass
class Session:
    """This process's part of a run: where it started, and the last step's metrics."""

    started: float = field(default_factory=time.monotonic)
    start_step: int = 0
    start_elapsed: float = 0.0
    last: dict[str, float] = field(default_factory=dict)

    @classmethod
    def resuming(cls, state: TrainState) -> Session:
        """A session that continues a (possibly restored) state."""
        return cls(start_step=state.step, start_elapsed=state.elapsed_s)

    def tick(self, state: TrainState) -> None:
        """Count one step done and the run's clock."""
        state.step += 1
        state.elapsed_s = self.start_elapsed + time.monotonic() - self.started


def run_loop(
    config: LoopSettings,
    state: TrainState,
    step: Callable[[], None],
    checkpoint: Callable[[], None],
    after_step: Callable[[], None],
    cancel: CancelFlag | None = None,
) -> None:
    """Step until the budget is spent, checkpointing every checkpoint_every_s, on cancel (then
    Cancelled is raised) and at the end."""
    last_checkpoint = time.monotonic()
    while not budget_spent(config, state):
        try:
            check_cancel(cancel)
        except Cancelled:
            checkpoint()
            log.info("training cancelled at step %d; checkpoint kept", state.step)
            raise
        step()
        if time.monotonic() - last_checkpoint >= config.checkpoint_every_s:
            checkpoint()
            last_checkpoint = time.monotonic()
        after_step()
    checkpoint()


def budget_spent(config: LoopSettings, state: TrainState) -> bool:
    """Whether the step or seconds budget is used up."""
    total = config.total_steps
    if total is not None:
        return state.step >= total
    return state.elapsed_s >= float(config.seconds or 0.0)


def budget_fraction(config: LoopSettings, state: TrainState) -> float:
    """How much of the budget is used, 0..1."""
    total = config.total_steps
    if total is not None:
        return min(1.0, state.step / total)
    return min(1.0, state.elapsed_s / float(config.seconds or 1.0))


def learning_rate(config: LoopSettings, state: TrainState) -> float:
    """Exponential decay from lr to lr_final over the budget."""
    return config.lr * (config.lr_final / config.lr) ** budget_fraction(config, state)


def progress_report(
    config: LoopSettings, state: TrainState, session: Session, preview: Callable[[], Any]
) -> Progress:
    """Step, estimated total, images/s, ETA, last losses and (every preview_every) a preview."""
    step = state.step
    steps_per_s = (step - session.start_step) / max(1e-9, time.monotonic() - session.started)
    total = config.total_steps
    if total is None:  # seconds budget: extrapolate the step count
        eta: float | None = max(0.0, float(config.seconds or 0.0) - state.elapsed_s)
        total = max(step, step + round((eta or 0.0) * steps_per_s))
    else:
        eta = (total - step) / steps_per_s if steps_per_s > 0 else None
    every = config.preview_every
    wants_preview = every > 0 and (step % every == 0 or budget_spent(config, state))
    return Progress(
        done=step,
        total=total,
        eta_s=eta,
        rate=steps_per_s * config.batch_size,
        metrics=dict(session.last),
        preview=preview() if wants_preview else None,
    )


def preview(model: torch.nn.Module, image: torch.Tensor) -> Any:
    """The model's output for one (1, 3, H, W) image, as (H, W, 3) uint8 RGB."""
    with torch.no_grad():
        return to_uint8(model(image))


def device_info(device: torch.device) -> dict[str, str]:
    """Which machine and chip trained the style."""
    chip = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    return {
        "type": device.type,
        "name": chip,
        "machine": platform.node(),
        "torch": torch.__version__,
    }
