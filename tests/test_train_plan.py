"""Before a run starts: which backbone a new style goes on, its steps and expected seconds."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import make_tiny_multistyle, make_tiny_style

from stylefusion.errors import BudgetTooSmall
from stylefusion.style_fit import default_backbone, find_backbone, new_style_config
from stylefusion.style_folder import read_style
from stylefusion.train_config import MIN_FIT_STEPS, TrainConfig
from stylefusion.train_plan import (
    SETUP_SECONDS,
    estimate_run,
    fitting_steps,
    single_style_defaults,
)


@pytest.fixture
def models(tmp_path: Path) -> Path:
    """Three styles on one backbone, one on another, and a single-style network."""
    root = tmp_path / "models"
    root.mkdir()
    make_tiny_multistyle(root, ["a1", "a2", "a3"], seed=1, variants=("lite",))
    make_tiny_multistyle(root, ["b1"], seed=9, variants=("lite",))
    make_tiny_style(root, "alone", seed=4, variants=("lite",))
    return root


def test_the_default_backbone_is_the_one_most_styles_share(models: Path, tmp_path: Path) -> None:
    most = read_style(models / "a1").backbone_id("lite")
    assert default_backbone(models).id == most
    assert default_backbone(models, "lite").variant == "lite"
    assert default_backbone(models, "full") is None  # no full network shares a backbone
    assert default_backbone(tmp_path / "nowhere") is None
    by_style = find_backbone(models, "b1")
    assert by_style.id == read_style(models / "b1").backbone_id("lite") != most
    assert [s.name for s in find_backbone(models, most).styles] == ["a1", "a2", "a3"]


def test_a_run_is_its_steps_at_the_timed_rate_plus_start_up() -> None:
    fit = new_style_config(Path("p.png"), Path("c"), "new", "0123456789abcdef", device="cpu")
    estimate = estimate_run(fit, step_seconds=2.0)
    assert (estimate.mode, estimate.steps, estimate.size) == ("norms", 120, 128)
    assert estimate.seconds == 240 + SETUP_SECONDS["cpu"]
    timed = new_style_config(Path("p"), Path("c"), "new", "x", device="cpu", seconds=300.0)
    assert (timed.steps, estimate_run(timed, 2.0).steps) == (None, 150)
    with pytest.raises(BudgetTooSmall, match="at least 330 s on this machine") as refused:
        estimate_run(timed, step_seconds=5.5)
    assert (refused.value.minimum_steps, refused.value.minimum_seconds) == (MIN_FIT_STEPS, 330)
    own = TrainConfig(Path("p"), Path("c"), "new", steps=10, device="cpu")
    assert estimate_run(own, 2.0).mode == "single"  # no minimum for a network of its own


def test_a_network_of_its_own_fits_the_device() -> None:
    cpu = single_style_defaults(torch.device("cpu"))
    assert cpu["size"] * cpu["batch_size"] < TrainConfig.size * TrainConfig.batch_size
    assert single_style_defaults(torch.device("cuda"))["size"] == TrainConfig.size


def test_a_new_style_without_a_budget_gets_the_steps_that_fit_the_device() -> None:
    cpu = new_style_config(Path("p"), Path("c"), "new", "x", device="cpu")
    # live within 5 minutes: (300 s - start-up) x 0.9 margin at the timed rate, 60..120 steps
    assert [fitting_steps(cpu, rate) for rate in (0.1, 2.0, 3.4, 30.0)] == [120, 119, 70, 60]
