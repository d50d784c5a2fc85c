"""Iterative (Gatys) renderer: the loss falls, both optimisers, scales, previews, cancel, output."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from conftest import make_style_image
from PIL import Image

from stylefusion.errors import Cancelled, InvalidInput
from stylefusion.progress import Progress
from stylefusion.renderer import RenderConfig, render, scale_schedule


@pytest.fixture
def config(tmp_path: Path, content_dir: Path) -> RenderConfig:
    """A tiny seeded render on CPU."""
    return RenderConfig(
        content=content_dir / "photo1.jpg",  # 56 x 64
        style_image=make_style_image(tmp_path / "style.png", seed=5),
        output=tmp_path / "out" / "render.png",
        size=48,
        iterations=10,
        device="cpu",
        threads=1,
        preview_every=5,
    )


def test_lbfgs_lowers_the_loss_and_writes_a_png(config: RenderConfig) -> None:
    reports: list[Progress] = []
    result = render(config, progress=reports.append)
    losses = [r.metrics["loss"] for r in reports]
    assert losses[-1] < 0.5 * losses[0]
    assert [r.done for r in reports][-1] == 10 and reports[-1].fraction == 1.0
    with Image.open(result.output) as img:
        assert img.format == "PNG" and img.size == (48, 42)  # longest side = size
    assert set(result.losses) == {"loss", "content", "style", "tv"}


def test_adam_option_lowers_the_loss(config: RenderConfig) -> None:
    reports: list[Progress] = []
    render(dataclasses.replace(config, optimizer="adam", lr=0.05), progress=reports.append)
    assert len(reports) == 10
    assert reports[-1].metrics["loss"] < reports[0].metrics["loss"]


def test_previews_arrive_every_n_iterations(config: RenderConfig) -> None:
    reports: list[Progress] = []
    render(config, progress=reports.append)
    previews = [r.preview for r in reports if r.preview is not None]
    assert len(previews) == 2
    assert all(p.shape == (42, 48, 3) and p.dtype == np.uint8 for p in previews)


def test_coarse_to_fine_splits_the_iterations(config: RenderConfig) -> None:
    assert scale_schedule(512, 300, 2) == [(256, 150), (512, 150)]
    assert scale_schedule(512, 301, 3) == [(128, 100), (256, 100), (512, 101)]
    reports: list[Progress] = []
    result = render(dataclasses.replace(config, size=64, scales=2), progress=reports.append)
    assert reports[-1].done == 10
    with Image.open(result.output) as img:
        assert img.size == (64, 56)


def test_cancel_stops_without_writing(config: RenderConfig) -> None:
    seen: list[int] = []

    class Flag:
        def is_set(self) -> bool:
            return len(seen) >= 3

    with pytest.raises(Cancelled):
        render(config, progress=lambda p: seen.append(p.done), cancel=Flag())
    assert seen == [1, 2, 3]
    assert not config.output.exists()


@pytest.mark.parametrize(
    "change, message",
    [
        ({"content": Path("/nonexistent.jpg")}, "content image"),
        ({"optimizer": "sgd"}, "unknown optimizer"),
        ({"iterations": 0}, "iterations"),
        ({"size": 48, "scales": 3}, "scales"),
    ],
)
def test_bad_settings_are_refused(config: RenderConfig, change: dict, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        render(dataclasses.replace(config, **change))
