"""`stylefusion train` against a models dir with a shared backbone: a new style's norms by
default, the expected duration said first, one line and an exit code for every refusal."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import make_tiny_multistyle
from media_helpers import make_photo

from stylefusion.cli import main
from stylefusion.style_folder import read_style

# the minimum 60 steps of 32 px crops: ~20 s on one loaded CPU thread; a smooth 'painting' and
# a small style weight converge there
QUICK = ["--size", "32", "--batch-size", "2", "--device", "cpu", "--threads", "1"]


@pytest.fixture
def models(tmp_path: Path) -> Path:
    root = tmp_path / "shared"
    root.mkdir()
    make_tiny_multistyle(root, ["ink", "oil"], seed=3, variants=("lite",))
    return root


def train_argv(tmp_path: Path, models: Path, content_dir: Path, name: str) -> list[str]:
    style = make_photo(tmp_path / "wave.png", width=64, height=64, seed=7)
    argv = ["train", "--style-image", str(style), "--content", str(content_dir), "--name", name]
    return [*argv, "--output", str(models), *QUICK]


def error_line(capsys: pytest.CaptureFixture[str]) -> str:
    lines = [line for line in capsys.readouterr().err.strip().splitlines() if "error" in line]
    assert len(lines) == 1, lines
    return lines[0]


def test_a_new_style_fits_the_shared_backbone_and_says_how_long_first(
    tmp_path: Path, models: Path, content_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = train_argv(tmp_path, models, content_dir, "wave")
    assert main([*argv, "--steps", "60", "--style-weight", "0.001"]) == 0
    err = capsys.readouterr().err
    backbone = read_style(models / "ink").backbone_id("lite")
    assert "expected: about" in err and f"norms on backbone {backbone}" in err
    assert err.index("expected: about") < err.index("trained ")
    assert read_style(models / "wave").backbone_id("lite") == backbone


def test_too_small_a_budget_is_one_line_and_exit_2(
    tmp_path: Path, models: Path, content_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = train_argv(tmp_path, models, content_dir, "wave")
    assert main([*argv, "--steps", "30"]) == 2
    assert "at least 60 steps" in error_line(capsys)
    assert main([*argv, "--backbone", "nope", "--steps", "60"]) == 2
    assert "no shared backbone" in error_line(capsys)
    assert main([*argv, "--backbone", "none", "--fine-tune", "--quiet"]) == 2
    assert "backbone" in error_line(capsys)
    assert not (models / "wave").exists()


def test_a_run_that_does_not_converge_writes_nothing(
    tmp_path: Path, models: Path, content_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = train_argv(tmp_path, models, content_dir, "wave")
    code = main([*argv, "--steps", "60", "--style-weight", "5", "--quiet"])
    assert code == 1
    line = error_line(capsys)
    assert "did not converge" in line and "no style was written" in line and "--resume" in line
    assert sorted(p.name for p in models.iterdir() if p.name != ".checkpoints") == [
        ".backbones", "ink", "oil",
    ]  # fmt: skip


def test_backbone_none_trains_a_network_of_its_own(
    tmp_path: Path, models: Path, content_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = train_argv(tmp_path, models, content_dir, "own")
    assert main([*argv, "--backbone", "none", "--variant", "lite", "--steps", "2"]) == 0
    assert "a network of its own" in capsys.readouterr().err
    assert read_style(models / "own").backbone_id("lite") is None
    assert (models / "own" / "lite.safetensors").is_file()
