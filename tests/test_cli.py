"""The `stylefusion` command line: exit codes, one-line errors, and each subcommand end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from media_helpers import make_clip, make_photo, read_clip

from stylefusion.cli import main
from stylefusion.content import default_photos_dir
from stylefusion.images import load_image
from stylefusion.train_config import portable_path


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    """The single stderr line of a failed command."""
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("stylefusion: error: ")
    return lines[0]


STYLIZE = ["stylize", "--style", "alpha", "--input", "{photo}", "--output", "{tmp}/o"]
TRAIN = ["train", "--style-image", "{photo}", "--content", "{tmp}", "--name", "x"]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["stylize", "--style", "nope", "--input", "{photo}", "--output", "{tmp}/o"], "'nope'"),
        (["stylize", "--style", "nope", "--input", "{photo}", "--output", "o"], ": alpha, beta"),
        (["video", "{photo}", "{tmp}/out.mp4", "--style", "nope"], ": alpha, beta"),
        (["bench", "--style", "nope"], ": alpha, beta"),
        (["stylize", "--style", "alpha", "--input", "{missing}", "--output", "o"], "no such file"),
        ([*STYLIZE, "--strength", "2"], "--strength"),
        ([*STYLIZE, "--size", "0"], "--size"),
        ([*STYLIZE, "--size", "big"], "--size"),
        (["video", "{photo}", "o.mp4", "--style", "alpha", "--max-side", "8"], "--max-side"),
        (["video", "{photo}", "o.mp4", "--style", "alpha", "--flow-blend", "1"], "flow blend"),
        (["video", "{missing}", "{tmp}/out.mp4", "--style", "alpha"], "no such file"),
        (["video", "{photo}", "{tmp}/out.mp4", "--style", "alpha"], "not a video"),
        (["video", "in.mp4"], "required"),
        ([*TRAIN, "--steps", "3", "--seconds", "4"], "not allowed with"),
        ([*TRAIN, "--steps", "0"], "--steps"),
        (["bench", "--size", "320by240"], "--size"),
        (["render", "--content", "{photo}"], "required"),
        (["paint"], "invalid choice"),
        ([], "required"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(
    argv: list[str],
    expected: str,
    tmp_path: Path,
    models_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    photo = make_photo(tmp_path / "photo.png")
    values = {"photo": photo, "missing": tmp_path / "missing.jpg", "tmp": tmp_path}
    words = [w.format(**values) for w in argv]
    if words and words[0] in ("stylize", "video", "bench"):
        words += ["--models-dir", str(models_dir), "--device", "cpu"]
    assert main(words) == 2
    assert expected in _error_line(capsys)


def test_stylize_end_to_end(
    tmp_path: Path, models_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photo = make_photo(tmp_path / "cat.jpg", width=40, height=24)
    out = tmp_path / "out"
    argv = ["stylize", "--style", "beta", "--input", str(photo), "--output", str(out)]
    code = main([*argv, "--models-dir", str(models_dir), "--device", "cpu", "--size", "20"])
    assert code == 0
    assert capsys.readouterr().out.split() == [str(out / "cat-beta.png")]
    assert load_image(out / "cat-beta.png").shape == (12, 20, 3)


def test_video_end_to_end(
    tmp_path: Path, models_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clip = make_clip(tmp_path / "in.mp4", frames=12, audio="aac")
    out = tmp_path / "styled.mp4"
    argv = ["video", str(clip), str(out), "--style", str(models_dir / "alpha"), "--device", "cpu"]
    assert main([*argv, "--max-side", "32", "--batch-size", "5", "--strength", "0.8"]) == 0
    facts = read_clip(out)
    assert len(facts.frames) == 12 and facts.frames[0].shape == (24, 32, 3)
    assert facts.audio_seconds == pytest.approx(1.2, abs=0.05)
    bar = capsys.readouterr().err
    assert "12/12" in bar and "fps=" in bar


@pytest.mark.parametrize(("sent", "size"), [([], (24, 32)), (["--max-side", "0"], (48, 64))])
def test_video_on_a_cpu_is_painted_at_the_cpu_size_by_default(
    tmp_path: Path,
    models_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    sent: list[str],
    size: tuple[int, int],
) -> None:
    import stylefusion.devices

    monkeypatch.setattr(stylefusion.devices, "CPU_CLIP_SIDE", 32)  # 360 in life
    clip = make_clip(tmp_path / "in.mp4", frames=4, audio=None)  # 64x48
    out = tmp_path / "styled.mp4"
    argv = ["video", str(clip), str(out), "--style", str(models_dir / "alpha"), "--device", "cpu"]
    assert main([*argv, *sent]) == 0
    assert read_clip(out).frames[0].shape[:2] == size
    assert f"4 frames of {size[1]}x{size[0]}" in capsys.readouterr().err


def test_bench_json_prints_only_json(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["bench", "--json", "--device", "cpu", "--size", "64x48", "--repeats", "2"]
    assert main([*argv, "--variant", "lite", "--warmup", "1"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["fps"] > 0
    assert (result["size"], result["variant"], result["batch_size"]) == ("64x48", "lite", 1)


def test_module_help_lists_every_subcommand() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "stylefusion", "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0
    for command in ("train", "stylize", "video", "render", "bench"):
        assert command in done.stdout


HELP_WITHOUT_TORCH = """
import runpy, sys
sys.argv = sys.argv[1:]
try:
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
except SystemExit as exit:
    assert exit.code in (0, None), exit.code
print("loaded:", [m for m in ("torch", "numpy") if m in sys.modules])
"""


@pytest.mark.parametrize(
    "argv",
    [
        ["stylefusion", "--help"],
        ["stylefusion", "train", "--help"],
        ["stylefusion", "render", "--help"],
        ["server", "--help"],
    ],
)
def test_help_answers_without_loading_torch(argv: list[str]) -> None:
    """`--help` reads no model: loading torch alone took 3 s on a 2-core CPU (numpy 0.3 s)."""
    done = subprocess.run(
        [sys.executable, "-c", HELP_WITHOUT_TORCH, *argv],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout
    assert done.stdout.strip().endswith("loaded: []")


def test_train_end_to_end(
    tmp_path: Path, content_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    style = make_photo(tmp_path / "style.png", width=48, height=48, seed=4)
    models = tmp_path / "models"
    argv = ["train", "--style-image", str(style), "--content", str(content_dir), "--name", "tiny"]
    argv += ["--output", str(models), "--variant", "lite", "--steps", "2", "--size", "32"]
    argv += ["--style-size", "64"]  # the painting's Grams at 512 px: seconds of a CPU
    assert main([*argv, "--batch-size", "2", "--device", "cpu"]) == 0
    assert "loss=" in capsys.readouterr().err  # the bar shows the losses
    meta = json.loads((models / "tiny" / "meta.json").read_text())
    assert (models / "tiny" / "lite.safetensors").is_file() and "lite" in meta["variants"]
    command = meta["variants"]["lite"]["training"]["command"]
    assert command.startswith("stylefusion train --style-image") and "--steps 2" in command
    assert main([*argv, "--batch-size", "2", "--device", "cpu", "--quiet"]) == 2  # no overwrite


def test_render_end_to_end(tmp_path: Path) -> None:
    content = make_photo(tmp_path / "content.png", width=40, height=30)
    style = make_photo(tmp_path / "style.png", width=32, height=32, seed=5)
    out = tmp_path / "render.png"
    argv = ["render", "--content", str(content), "--style-image", str(style), "--output", str(out)]
    argv += ["--size", "32", "--iterations", "3", "--optimizer", "adam", "--device", "cpu"]
    assert main(argv) == 0
    rendered = load_image(out)
    assert rendered.shape == (24, 32, 3)
    assert not np.array_equal(rendered, load_image(content, max_side=32))


def test_train_without_content_uses_the_shipped_photos(tmp_path: Path) -> None:
    style = make_photo(tmp_path / "style.png", width=48, height=48, seed=4)
    models = tmp_path / "models"
    argv = ["train", "--style-image", str(style), "--name", "plain", "--output", str(models)]
    argv += ["--variant", "lite", "--steps", "1", "--size", "32", "--batch-size", "1"]
    assert main([*argv, "--style-size", "64", "--device", "cpu", "--quiet"]) == 0
    meta = json.loads((models / "plain" / "meta.json").read_text())
    config = meta["variants"]["lite"]["training"]["config"]
    assert config["content_dir"] == portable_path(default_photos_dir())  # no absolute path
    assert not Path(config["content_dir"]).is_absolute()
