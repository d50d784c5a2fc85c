"""Multi-style trainer: N paintings into one network, exact resume, trained starts, frozen fits."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from conftest import TINY, CancelAfter, make_style_image, make_tiny_style

from stylefusion.errors import Cancelled, InvalidInput
from stylefusion.multistyle_trainer import train_styles
from stylefusion.progress import Progress
from stylefusion.style_folder import list_styles, load_shared_style, load_transformer, read_style
from stylefusion.train_config import MotionConfig, MultiStyleConfig, StyleSource


@pytest.fixture
def shipped(tmp_path: Path) -> Path:
    """A models dir with tiny single-style lite networks for 'ink' and 'oil'."""
    root = tmp_path / "shipped"
    root.mkdir()
    for name, seed in (("ink", 5), ("oil", 6)):
        make_tiny_style(root, name, seed, variants=("lite",))
    return root


@pytest.fixture
def config(tmp_path: Path, content_dir: Path) -> MultiStyleConfig:
    """Two tiny styles, seeded, on the CPU."""
    styles = tuple(
        StyleSource(name, make_style_image(tmp_path / f"{name}.png", seed=seed))
        for name, seed in (("ink", 3), ("oil", 4))
    )
    return MultiStyleConfig(
        styles=styles,
        content_dir=content_dir,
        output_dir=tmp_path / "models",
        architecture=TINY,
        steps=6,
        size=32,
        batch_size=2,
        style_size=64,
        lr=1e-2,
        lr_final=1e-3,
        device="cpu",
        threads=1,
        preview_every=3,
        notes=(("style_weight", "the yardstick's weight"),),
    )


def test_training_lowers_every_style_loss_and_writes_each_style(config: MultiStyleConfig) -> None:
    reports: list[Progress] = []
    result = train_styles(dataclasses.replace(config, steps=16), progress=reports.append)
    losses = [r.metrics["loss"] for r in reports]
    assert sum(losses[-3:]) / 3 < 0.7 * losses[0]
    assert [s.name for s in list_styles(config.output_dir)] == ["ink", "oil"]
    ink, oil = (read_style(f) for f in result.folders)
    assert ink.backbone_id("lite") == oil.backbone_id("lite") == result.backbone_id
    meta = json.loads((result.folders[0] / "meta.json").read_text())["variants"]["lite"]
    assert meta["training"]["why"] == {"style_weight": "the yardstick's weight"}
    assert meta["architecture"]["styles"] == 2 and set(meta["losses"]) == {"content", "style"}
    assert not config.checkpoint_file.exists()


def test_each_style_is_its_own_look(config: MultiStyleConfig) -> None:
    result = train_styles(config)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        ink, oil = (load_transformer(f, "lite")(x) for f in result.folders)
    assert (ink - oil).abs().mean() > 1e-3


def test_previews_show_the_sample_in_every_style(config: MultiStyleConfig) -> None:
    reports: list[Progress] = []
    train_styles(config, progress=reports.append)
    previews = [r.preview for r in reports if r.preview is not None]
    assert len(previews) == 2 and previews[0].shape == (32, 2 * 32, 3)


def test_resumed_run_ends_with_the_same_weights(config: MultiStyleConfig, tmp_path: Path) -> None:
    motion = MotionConfig(weight=100.0)
    straight = train_styles(dataclasses.replace(config, output_dir=tmp_path / "a", motion=motion))
    interrupted = dataclasses.replace(config, output_dir=tmp_path / "b", motion=motion)
    flag = CancelAfter(4)
    with pytest.raises(Cancelled):
        train_styles(interrupted, progress=flag, cancel=flag)
    assert interrupted.checkpoint_file.is_file()
    resumed = train_styles(dataclasses.replace(interrupted, resume=True))
    assert resumed.steps == straight.steps == 6
    assert resumed.backbone_id == straight.backbone_id  # content-addressed: identical bytes
    for a, b in zip(straight.folders, resumed.folders, strict=True):
        assert torch.equal(load_shared_style(a, "lite").norms, load_shared_style(b, "lite").norms)


def test_a_trained_start_begins_where_the_single_style_nets_were(
    config: MultiStyleConfig, shipped: Path
) -> None:
    styles = tuple(
        dataclasses.replace(s, init_from=shipped / s.name) for s in config.styles
    )  # both start from their own norms; the convolutions from ink's network
    still = dataclasses.replace(
        config, styles=styles, init_backbone=shipped / "ink", steps=1, lr=1e-12, lr_final=1e-12
    )
    result = train_styles(still)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        want = load_transformer(shipped / "ink", "lite")(x)
        got = load_transformer(result.folders[0], "lite")(x)
    torch.testing.assert_close(got, want, rtol=2e-3, atol=2e-3)


def test_a_frozen_backbone_fit_changes_only_the_norms(
    config: MultiStyleConfig, tmp_path: Path
) -> None:
    first = train_styles(config)
    painting = make_style_image(tmp_path / "new.png", seed=9)
    new = dataclasses.replace(
        config,
        styles=(StyleSource("wave", painting, init_from=first.folders[0]),),
        backbone=first.backbone_id,
        freeze_backbone=True,
    )
    result = train_styles(new)
    assert result.backbone_id == first.backbone_id  # the shared file is untouched
    wave = load_shared_style(result.folders[0], "lite")
    assert not torch.equal(wave.norms, load_shared_style(first.folders[0], "lite").norms)


def test_the_temporal_term_is_reported_when_on(config: MultiStyleConfig) -> None:
    reports: list[Progress] = []
    motion = MotionConfig(weight=1000.0, noise_std=0.05)
    train_styles(dataclasses.replace(config, steps=2, motion=motion), progress=reports.append)
    assert all(r.metrics["temporal"] > 0 for r in reports)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"freeze_backbone": True}, "backbone"),
        ({"backbone": "0123456789abcdef"}, "no backbone"),
        ({"steps": 0}, "steps"),
        ({"motion": MotionConfig(weight=-1.0)}, "motion"),
    ],
)
def test_bad_settings_are_refused(config: MultiStyleConfig, change: dict, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        train_styles(dataclasses.replace(config, **change))


def test_duplicate_names_and_existing_styles_are_refused(config: MultiStyleConfig) -> None:
    twice = (config.styles[0], config.styles[0])
    with pytest.raises(InvalidInput, match="distinct"):
        train_styles(dataclasses.replace(config, styles=twice))
    train_styles(dataclasses.replace(config, steps=1))
    with pytest.raises(InvalidInput, match="overwrite"):
        train_styles(dataclasses.replace(config, steps=1))
    train_styles(dataclasses.replace(config, steps=1, overwrite=True))
