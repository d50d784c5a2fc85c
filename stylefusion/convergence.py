"""Whether a training run converged: measured on its smoothed losses, checked at its end."""

from __future__ import annotations

from .checkpoint import TrainState
from .errors import NotConverged
from .train_config import Convergence

BASELINE_STEPS = 5  # the start is the smoothed loss after this many steps


def record_start(state: TrainState) -> None:
    """Keep the smoothed loss terms of the first steps as the run's start (saved with it)."""
    if state.ema_count == BASELINE_STEPS:
        for term in ("loss", "style"):
            if term in state.ema:
                state.ema[f"start/{term}"] = state.ema[term]


def check_converged(state: TrainState, criteria: Convergence, style_weight: float) -> None:
    """Raise NotConverged (saying what fell short) unless the run meets the criteria."""
    start = state.ema.get("start/loss")
    if start is None:
        raise NotConverged(f"too few steps ({state.ema_count}) to judge convergence")
    loss, style = state.ema["loss"], state.ema["style"]
    drop = 1 - loss / start
    share = style_weight * style / loss if loss > 0 else 1.0
    problems = []
    if drop < criteria.min_drop:
        problems.append(f"the loss fell {drop:.0%} from its start (needs {criteria.min_drop:.0%})")
    if share > criteria.max_style_share:
        problems.append(
            f"the style term is {share:.0%} of the loss (at most {criteria.max_style_share:.0%})"
        )
    if problems:
        raise NotConverged(
            "training did not converge: " + "; ".join(problems) + ": give it a larger budget"
        )
