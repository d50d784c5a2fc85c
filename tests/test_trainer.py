"""Fast-style trainer: loss goes down, exact resume, cancel, validation, style folder output."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY, CancelAfter, make_style_image

from stylefusion.errors import Cancelled, InvalidInput
from stylefusion.progress import Progress
from stylefusion.style_folder import load_transformer
from stylefusion.trainer import TrainConfig, train


@pytest.fixture
def config(tmp_path: Path, content_dir: Path) -> TrainConfig:
    """A tiny, seeded, CPU training run."""
    return TrainConfig(
        style_image=make_style_image(tmp_path / "style.png", seed=3),
        content_dir=content_dir,
        name="tiny",
        output_dir=tmp_path / "models",
        steps=6,
        size=32,
        batch_size=2,
        style_size=64,
        lr=1e-2,
        lr_final=1e-3,
        device="cpu",
        threads=1,
        architecture=TINY,
        preview_every=3,
    )


def test_a_few_steps_lower_the_loss(config: TrainConfig) -> None:
    reports: list[Progress] = []
    train(dataclasses.replace(config, steps=12), progress=reports.append)
    losses = [r.metrics["loss"] for r in reports]
    assert [r.done for r in reports] == list(range(1, 13))
    assert sum(losses[-3:]) / 3 < 0.7 * losses[0]
    assert {"loss", "content", "style", "tv", "lr", "skipped"} <= set(reports[-1].metrics)
    assert reports[-1].metrics["lr"] < reports[0].metrics["lr"]  # decays towards lr_final


def test_previews_are_rgb_images_every_n_steps(config: TrainConfig) -> None:
    reports: list[Progress] = []
    train(config, progress=reports.append)
    with_preview = [r.done for r in reports if r.preview is not None]
    assert with_preview == [3, 6]
    preview = reports[-1].preview
    assert preview is not None and preview.shape == (32, 32, 3) and preview.dtype.name == "uint8"
    assert reports[-1].rate is not None and reports[-1].rate > 0


def test_style_folder_is_written_with_training_meta(config: TrainConfig) -> None:
    result = train(dataclasses.replace(config, command="stylefusion train ..."))
    assert result.folder == config.output_dir / "tiny" and result.steps == 6
    model = load_transformer(result.folder, "full")
    assert model.config == TINY
    meta = json.loads((result.folder / "meta.json").read_text())
    variant = meta["variants"]["full"]
    assert variant["training"]["steps"] == 6
    assert variant["training"]["command"] == "stylefusion train ..."
    assert variant["training"]["config"]["size"] == 32
    assert set(variant["losses"]) == {"loss", "content", "style", "tv"}
    assert result.losses["loss"] == pytest.approx(variant["losses"]["loss"])
    assert (result.folder / "style.jpg").is_file()
    assert not config.checkpoint_file.exists()  # removed once the style is written


def test_existing_variant_needs_overwrite(config: TrainConfig) -> None:
    train(dataclasses.replace(config, steps=1))
    with pytest.raises(InvalidInput, match="already has"):
        train(dataclasses.replace(config, steps=1))
    with pytest.raises(InvalidInput, match="already has"):  # resume, but nothing to resume from
        train(dataclasses.replace(config, steps=1, resume=True))
    train(dataclasses.replace(config, steps=1, overwrite=True))


def test_cancel_raises_and_leaves_a_checkpoint(config: TrainConfig) -> None:
    flag = CancelAfter(2)
    with pytest.raises(Cancelled):
        train(config, progress=flag, cancel=flag)
    assert flag.seen == 2
    assert config.checkpoint_file.is_file()
    assert not (config.output_dir / "tiny").exists()
    saved = torch.load(config.checkpoint_file, weights_only=True)
    assert saved["step"] == 2


def test_resumed_run_ends_with_the_same_weights(config: TrainConfig, tmp_path: Path) -> None:
    straight = train(dataclasses.replace(config, output_dir=tmp_path / "a"))
    interrupted = dataclasses.replace(config, output_dir=tmp_path / "b")
    flag = CancelAfter(4)
    with pytest.raises(Cancelled):
        train(interrupted, progress=flag, cancel=flag)
    resumed = train(dataclasses.replace(interrupted, resume=True))
    assert resumed.steps == straight.steps == 6
    a = load_transformer(straight.folder, "full").state_dict()
    b = load_transformer(resumed.folder, "full").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_without_checkpoint_starts_fresh(config: TrainConfig) -> None:
    result = train(dataclasses.replace(config, steps=2, resume=True))
    assert result.steps == 2


def test_unreadable_content_file_is_skipped_with_a_warning(
    config: TrainConfig, caplog: pytest.LogCaptureFixture
) -> None:
    (config.content_dir / "broken.JPG").write_bytes(b"not an image")
    train(dataclasses.replace(config, steps=1))
    assert any("broken.JPG" in r.getMessage() for r in caplog.records if r.levelname == "WARNING")


def test_seconds_budget(config: TrainConfig) -> None:
    result = train(dataclasses.replace(config, steps=None, seconds=0.5))
    assert result.steps >= 1 and result.seconds >= 0.5


@pytest.mark.parametrize(
    "change, message",
    [
        ({"name": "Bad Name"}, "invalid style name"),
        ({"size": 16}, "size"),
        ({"steps": 5, "seconds": 10.0}, "not both"),
        ({"style_image": Path("/nonexistent/style.jpg")}, "style image"),
        ({"variant": "huge", "architecture": None}, "unknown variant"),
        ({"batch_size": 0}, "batch size"),
    ],
)
def test_bad_settings_are_refused(config: TrainConfig, change: dict, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        train(dataclasses.replace(config, **change))


def test_empty_content_folder_is_refused(config: TrainConfig, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    with pytest.raises(InvalidInput, match="no readable images"):
        train(dataclasses.replace(config, content_dir=empty))


def test_non_finite_step_is_skipped_and_counted(
    config: TrainConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    import stylefusion.perceptual as perceptual_module

    calls = {"n": 0}
    real_tv = perceptual_module.total_variation

    def flaky_tv(images: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        return real_tv(images) * (float("nan") if calls["n"] == 2 else 1.0)

    monkeypatch.setattr(perceptual_module, "total_variation", flaky_tv)
    reports: list[Progress] = []
    result = train(config, progress=reports.append)
    assert [r.metrics["skipped"] for r in reports] == [0, 1, 1, 1, 1, 1]
    model = load_transformer(result.folder, "full")
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_bf16_loss_network_trains(config: TrainConfig) -> None:
    # the CUDA mixed-precision path (bf16 autocast around VGG), exercised on the CPU
    reports: list[Progress] = []
    train(dataclasses.replace(config, steps=3, mixed_precision=True), progress=reports.append)
    assert all(np.isfinite(r.metrics["loss"]) for r in reports)
    assert reports[-1].metrics["skipped"] == 0
