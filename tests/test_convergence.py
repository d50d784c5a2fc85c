"""Convergence: judged on the smoothed losses, explained when it falls short."""

from __future__ import annotations

import pytest

from stylefusion.checkpoint import TrainState
from stylefusion.convergence import check_converged, record_start
from stylefusion.errors import NotConverged
from stylefusion.train_config import Convergence


def _state(start: float, loss: float, style: float) -> TrainState:
    state = TrainState()
    for _ in range(5):
        state.update_ema({"loss": start, "style": start / 10})
        record_start(state)
    state.ema.update(loss=loss, style=style)
    return state


def test_a_fallen_loss_with_a_balanced_style_term_converged() -> None:
    check_converged(_state(1000.0, 500.0, 60.0), Convergence(), style_weight=5.0)


def test_a_loss_that_barely_moved_did_not() -> None:
    with pytest.raises(NotConverged, match="fell 5%"):
        check_converged(_state(1000.0, 950.0, 60.0), Convergence(), style_weight=5.0)


def test_a_style_term_that_dominates_did_not() -> None:
    with pytest.raises(NotConverged, match="style term is 95%"):
        check_converged(_state(1000.0, 500.0, 95.0), Convergence(), style_weight=5.0)


def test_too_short_a_run_cannot_be_judged() -> None:
    state = TrainState()
    state.update_ema({"loss": 1.0, "style": 0.1})
    with pytest.raises(NotConverged, match="too few steps"):
        check_converged(state, Convergence(), style_weight=5.0)
