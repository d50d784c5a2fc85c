"""Training checkpoints: weights, optimizer, step, clock and RNG states, written atomically."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .errors import InvalidInput
from .fsutil import atomic_write

log = logging.getLogger(__name__)

CHECKPOINT_VERSION = 1
EMA_BETA = 0.9  # smoothing of the reported final losses and of the spike guard's baseline
SPIKE_WARMUP = 20  # steps before the spike guard compares against the running average


@dataclass
class TrainState:
    """Everything a resumed run needs besides the config: counters and running averages."""

    step: int = 0
    elapsed_s: float = 0.0
    skipped: int = 0
    ema: dict[str, float] = field(default_factory=dict)
    ema_count: int = 0

    def is_spike(self, loss: float, factor: float) -> bool:
        """Non-finite, or more than `factor` times the running average once it has settled."""
        if not math.isfinite(loss):
            return True
        return self.ema_count >= SPIKE_WARMUP and loss > factor * self.ema["loss"]

    def update_ema(self, values: dict[str, float]) -> None:
        """Fold one step's values into the running averages."""
        for key, value in values.items():
            old = self.ema.get(key, value)
            self.ema[key] = EMA_BETA * old + (1 - EMA_BETA) * value
        self.ema_count += 1


def save_checkpoint(
    path: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    state: TrainState,
    fingerprint: dict[str, Any],
) -> None:
    """Write the checkpoint atomically (temp file, fsync, rename); only tensors and plain types."""
    payload = {
        "version": CHECKPOINT_VERSION,
        "fingerprint": fingerprint,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "step": state.step,
        "elapsed_s": state.elapsed_s,
        "skipped": state.skipped,
        "ema": dict(state.ema),
        "ema_count": state.ema_count,
        "rng": _rng_states(),
    }
    atomic_write(Path(path), lambda tmp: torch.save(payload, tmp))
    log.debug("checkpoint at step %d written to %s", state.step, path)


def load_checkpoint(
    path: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    fingerprint: dict[str, Any],
) -> TrainState:
    """Restore model, optimizer and RNG states in place; return the saved counters."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if payload.get("version") != CHECKPOINT_VERSION:
            raise ValueError(f"checkpoint version {payload.get('version')!r}")
    except Exception as exc:  # any unreadable file: say which and why
        raise InvalidInput(f"cannot resume from {path}: {exc}") from exc
    if payload["fingerprint"] != fingerprint:
        raise InvalidInput(
            f"checkpoint {path} was made with different settings "
            f"({payload['fingerprint']} != {fingerprint}); drop --resume to start over"
        )
    model.load_state_dict(payload["model"])
    optimizer.load_state_dict(payload["optimizer"])
    _restore_rng(payload["rng"])
    return TrainState(
        step=int(payload["step"]),
        elapsed_s=float(payload["elapsed_s"]),
        skipped=int(payload["skipped"]),
        ema={k: float(v) for k, v in payload["ema"].items()},
        ema_count=int(payload["ema_count"]),
    )


def _rng_states() -> dict[str, Any]:
    states: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _restore_rng(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
