"""A new style in minutes: norms fitted against a frozen shared backbone, budgets, convergence."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from conftest import TINY, make_style_image

from stylefusion.backbone import write_backbone
from stylefusion.errors import InvalidInput, NotConverged
from stylefusion.style_fit import (
    MIN_FIT_STEPS,
    estimate_step_seconds,
    nearest_style,
    new_style_config,
    shared_backbone,
)
from stylefusion.style_folder import load_shared_style, read_style, save_shared_style
from stylefusion.train_config import TrainConfig
from stylefusion.trainer import train
from stylefusion.transformer_net import TransformerNet
from stylefusion.vgg import VGG19

SHARED = dataclasses.replace(TINY, styles=2)


@pytest.fixture
def models(tmp_path: Path) -> Path:
    """A models dir with two styles, 'ink' and 'oil', of one tiny shared backbone."""
    root = tmp_path / "shared"
    torch.manual_seed(0)
    net = TransformerNet(SHARED)
    with torch.no_grad():
        net.style_table.add_(torch.randn_like(net.style_table) * 0.2)
    backbone_id = write_backbone(root, net)
    for row, (name, seed) in enumerate((("ink", 1), ("oil", 2))):
        image = make_style_image(tmp_path / f"{name}.png", seed=seed)
        save_shared_style(
            root / name, "lite", net, net.style_norms(row)[0].detach(), backbone_id,
            name=name, style_image=image,
        )  # fmt: skip
    return root


@pytest.fixture
def config(models: Path, content_dir: Path, tmp_path: Path) -> TrainConfig:
    """The default new-style job, shrunk to a tiny seeded run (a noise 'painting' is all style:
    a small style weight gives the balance of content and style a real painting has)."""
    painting = make_style_image(tmp_path / "wave.png", seed=7)
    return new_style_config(
        painting, content_dir, "wave", "ink", output_dir=models, size=32, batch_size=2,
        style_size=64, style_weight=0.01, steps=MIN_FIT_STEPS, device="cpu", threads=1,
        lr=3e-3, lr_final=1e-3,
    )  # fmt: skip


def test_a_new_style_is_a_few_kb_of_norms_on_the_same_backbone(
    config: TrainConfig, models: Path
) -> None:
    backbone = shared_backbone(models, "ink")
    result = train(config)
    info = read_style(result.folder)
    assert info.backbone_id("lite") == backbone.id
    assert (result.folder / "lite.norms.safetensors").stat().st_size < 8 * 1024
    assert shared_backbone(models, backbone.id).styles == tuple(
        read_style(models / n) for n in ("ink", "oil", "wave")
    )
    wave, ink = (load_shared_style(models / n, "lite") for n in ("wave", "ink"))
    assert not torch.equal(wave.norms, ink.norms)
    assert result.losses["style"] > 0


def test_too_small_a_budget_is_refused_up_front_naming_the_minimum(config: TrainConfig) -> None:
    with pytest.raises(InvalidInput, match=f"at least {MIN_FIT_STEPS} steps"):
        train(dataclasses.replace(config, steps=MIN_FIT_STEPS - 1))
    with pytest.raises(InvalidInput, match=r"at least \d+ s on this machine"):
        train(dataclasses.replace(config, steps=None, seconds=0.01))
    assert not (config.output_dir / "wave").exists()


def test_a_run_that_does_not_converge_publishes_nothing(config: TrainConfig) -> None:
    with pytest.raises(NotConverged, match="did not converge"):
        train(dataclasses.replace(config, lr=1e-9, lr_final=1e-9))
    assert not (config.output_dir / "wave").exists()


def test_the_new_style_starts_from_the_nearest_painting(models: Path, tmp_path: Path) -> None:
    styles = shared_backbone(models, "oil").styles
    twin = make_style_image(tmp_path / "oil-again.png", seed=2)  # oil's very painting
    assert nearest_style(twin, styles, VGG19()).name == "oil"


def test_an_unknown_or_single_style_backbone_is_refused(
    config: TrainConfig, models_dir: Path
) -> None:
    with pytest.raises(InvalidInput, match="no shared backbone"):
        train(dataclasses.replace(config, backbone="0123456789abcdef"))
    with pytest.raises(InvalidInput, match="single-style"):
        shared_backbone(models_dir, "alpha")


def test_step_time_is_measured_on_this_device(config: TrainConfig) -> None:
    seconds = estimate_step_seconds(config, TINY)
    assert 0 < seconds < 5
